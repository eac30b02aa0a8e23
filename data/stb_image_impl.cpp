// The one translation unit that compiles the stb single-header libraries (Sean
// Barrett, public domain; Debian libstb-dev). Every other file includes the headers
// for their declarations only.
#define STB_IMAGE_IMPLEMENTATION
// Only the formats kiln lists (data/image_io.h): every decoder compiled in is a parser
// of untrusted bytes, and stb's PSD, PIC, HDR, GIF, TGA and PNM readers see far less
// fuzzing than its JPEG and PNG ones.
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>
