// image_grid(): thumbnails in rows of `columns` cells, each with caption lines
// underneath (e.g. "true: cat" in black, "pred: dog 0.87" in red), for the
// misclassified/correct examples of a run report.
//
// Each image is scaled, keeping its aspect ratio, to fit a thumbnail_size square and
// centred in it on a light grey backdrop. Smoothly scaled images are resized here
// once (report/image.h resize_smooth), so the Figure (and its SVG) carries
// thumbnail-sized pixels rather than the full-size originals.
#include <algorithm>
#include <cmath>

#include "engine/core/check.h"
#include "report/chart_layout.h"
#include "report/charts.h"

namespace kiln::report {

namespace {
// A caption cut to max_width. A trailing number ("pred: garbage truck 0.87") is kept
// and the words before it are cut instead ("pred: garbag.. 0.87"): the score matters more.
std::string fit_caption(const std::string& text, double size, double max_width) {
  if (text_width(text, size) <= max_width) return text;
  const size_t space = text.rfind(' ');
  if (space != std::string::npos && space > 0 && space + 1 < text.size()) {
    const std::string last = text.substr(space);  // " 0.87"
    const bool numeric = last.find_first_not_of(" 0123456789.%") == std::string::npos;
    const double head_width = max_width - text_width(last, size);
    if (numeric && head_width >= text_width("abc..", size))
      return truncate_to_width(text.substr(0, space), size, head_width) + last;
  }
  return truncate_to_width(text, size, max_width);
}
}  // namespace

Figure image_grid(const std::vector<CaptionedImage>& images, const ImageGridOptions& options) {
  KILN_CHECK(!images.empty(), "image_grid: no images");
  KILN_CHECK(options.columns > 0, "image_grid: columns must be positive, got ", options.columns);
  KILN_CHECK(options.thumbnail_size > 0, "image_grid: thumbnail_size must be positive, got ", options.thumbnail_size);
  KILN_CHECK(options.gap >= 0, "image_grid: gap must be >= 0, got ", options.gap);
  size_t caption_lines = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    KILN_CHECK(images[i].image.width > 0 && images[i].image.height > 0, "image_grid: image ", i, " is empty");
    caption_lines = std::max(caption_lines, images[i].captions.size());
  }
  const int count = static_cast<int>(images.size());
  const int columns = std::min(options.columns, count), rows = (count + columns - 1) / columns;
  const double thumb = options.thumbnail_size, gap = options.gap, size = options.caption_size;
  const double line_h = std::ceil(text_ascent(size) + text_descent(size) + 3);
  const double cell_h = thumb + (caption_lines > 0 ? 4 + line_h * caption_lines : 0);
  const double title_h =
      options.title.empty() ? 0 : std::ceil(text_ascent(layout::title_size) + text_descent(layout::title_size) + 8);

  const int width = static_cast<int>(columns * (thumb + gap) + gap);
  const int height = static_cast<int>(title_h + rows * (cell_h + gap) + gap);
  Figure figure(width, height);
  if (!options.title.empty())
    figure.text({width / 2.0, gap + text_ascent(layout::title_size)},
                truncate_to_width(options.title, layout::title_size, width - 2 * gap, true),
                {layout::title_size, TextAnchor::middle, 0, true, layout::text_color});

  for (int i = 0; i < count; ++i) {
    const CaptionedImage& item = images[i];
    const double x = gap + (i % columns) * (thumb + gap), y = title_h + gap + (i / columns) * (cell_h + gap);
    figure.rect(x, y, thumb, thumb, Rgb{240, 240, 240});
    // Fit the longer side to the thumbnail, keep the aspect ratio, centre.
    const double scale = thumb / std::max(item.image.width, item.image.height);
    const int w = std::max(1, static_cast<int>(std::lround(item.image.width * scale)));
    const int h = std::max(1, static_cast<int>(std::lround(item.image.height * scale)));
    const double ix = x + std::floor((thumb - w) / 2), iy = y + std::floor((thumb - h) / 2);
    if (options.pixelated) {
      figure.image(item.image, ix, iy, w, h, /*pixelated=*/true);
    } else {
      figure.image(w == item.image.width && h == item.image.height ? item.image : resize_smooth(item.image, w, h), ix,
                   iy, w, h);
    }
    for (size_t line = 0; line < item.captions.size(); ++line) {
      const Caption& caption = item.captions[line];
      figure.text({x + thumb / 2, y + thumb + 4 + line * line_h + text_ascent(size)},
                  fit_caption(caption.text, size, thumb + gap - 6),
                  {size, TextAnchor::middle, 0, false, caption.color});
    }
  }
  return figure;
}

}  // namespace kiln::report
