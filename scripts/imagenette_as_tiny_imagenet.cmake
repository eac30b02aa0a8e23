# Lays out an Imagenette-style folder (SRC/train/<class>/*.jpg, SRC/val/<class>/*.jpg,
# SRC/classes.csv with folder,wnid,imagenet_index,imagenet_name) in the Tiny-ImageNet
# format, as a 10-class stand-in for the 200-class benchmark (data/tiny_imagenet.h):
#
#   OUT/wnids.txt  OUT/words.txt
#   OUT/train/<wnid>/images/<wnid>_<i>.JPEG  (+ an empty <wnid>_boxes.txt, as the real set has)
#   OUT/val/images/val_<n>.JPEG  OUT/val/val_annotations.txt
#   OUT/test/images/  (empty: the real test set is unlabelled)
#
# The wnids are Imagenette's real ImageNet ids (classes.csv). Files are copied, not
# re-encoded (kiln decodes by content, whatever the extension says).
#
#   cmake -DSRC=/work/shared/assets/data/imagenette_96 -DOUT=tiny-imagenette \
#         [-DTRAIN_PER_CLASS=N] [-DVAL_PER_CLASS=M] -P scripts/imagenette_as_tiny_imagenet.cmake
#
# Without the PER_CLASS limits every image is laid out (350 train, 100 val a class
# for the shared 96 px copy).
foreach(var SRC OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "imagenette_as_tiny_imagenet.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT EXISTS "${SRC}/classes.csv")
  message(FATAL_ERROR "imagenette_as_tiny_imagenet.cmake: ${SRC}/classes.csv is missing (folder,wnid,... rows)")
endif()
file(STRINGS "${SRC}/classes.csv" rows)
list(POP_FRONT rows header)
if(NOT header MATCHES "^folder,wnid")
  message(FATAL_ERROR "${SRC}/classes.csv: expected a 'folder,wnid,...' header, got '${header}'")
endif()
file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}/test/images")
set(wnids "")
set(words "")
set(annotations "")
set(val_number 0)
foreach(row IN LISTS rows)
  string(REPLACE "," ";" fields "${row}")
  list(GET fields 0 folder)
  list(GET fields 1 wnid)
  list(GET fields 3 name)
  string(APPEND wnids "${wnid}\n")
  string(APPEND words "${wnid}\t${name}\n")
  foreach(part train val)
    file(GLOB images "${SRC}/${part}/${folder}/*.jpg" "${SRC}/${part}/${folder}/*.JPEG")
    list(SORT images)
    string(TOUPPER "${part}" PART)
    if(DEFINED ${PART}_PER_CLASS)
      list(LENGTH images count)
      if(count GREATER ${${PART}_PER_CLASS})
        list(SUBLIST images 0 ${${PART}_PER_CLASS} images)
      endif()
    endif()
    if(NOT images)
      message(FATAL_ERROR "imagenette_as_tiny_imagenet.cmake: no images in ${SRC}/${part}/${folder}")
    endif()
    file(MAKE_DIRECTORY "${OUT}/train/${wnid}/images" "${OUT}/val/images")
    set(i 0)
    foreach(image IN LISTS images)
      if(part STREQUAL "train")
        file(COPY_FILE "${image}" "${OUT}/train/${wnid}/images/${wnid}_${i}.JPEG")
      else()
        file(COPY_FILE "${image}" "${OUT}/val/images/val_${val_number}.JPEG")
        string(APPEND annotations "val_${val_number}.JPEG\t${wnid}\t0\t0\t63\t63\n")
        math(EXPR val_number "${val_number} + 1")
      endif()
      math(EXPR i "${i} + 1")
    endforeach()
  endforeach()
  file(WRITE "${OUT}/train/${wnid}/${wnid}_boxes.txt" "")
endforeach()
file(WRITE "${OUT}/wnids.txt" "${wnids}")
file(WRITE "${OUT}/words.txt" "${words}")
file(WRITE "${OUT}/val/val_annotations.txt" "${annotations}")
message("laid out ${SRC} as Tiny-ImageNet in ${OUT} (${val_number} val images)")
