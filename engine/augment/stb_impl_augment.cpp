// The stb_image / stb_image_write implementations (single-header libraries: exactly
// one translation unit defines *_IMPLEMENTATION). Used by `kiln augment-preview`.
//
// Merge note: data/stb_image_impl.cpp (the image-folder reader) also defines the
// stb_image implementation. When that file is in the tree, __has_include sees it
// and this file leaves stb_image to it, so the two never clash; once both are
// merged, move the stb_image_write define there and delete this file.
#if !__has_include("data/stb_image_impl.cpp")
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#endif

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
