// Eigen's f32 GEMM at ResNet-18's 3x3 convolution shapes, the product kiln's CPU
// convolution computes after im2col: C (Cout x H*W*N) = W (Cout x Cin*9) * cols.
// Built twice by benchmarks/eigen_gemm_isa.sh, for the compiler's default x86-64
// (SSE2: 4 floats per instruction) and for this machine (-march=native: AVX2 + FMA,
// or AVX-512), to show what the instruction set alone is worth (KILN_CPU_ARCH in
// CMakeLists.txt). One thread, best of 5 products per shape, GFLOP/s = 2*M*K*N / s.
#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cstdio>

int main() {
  struct Shape {
    int m, k, n;
    const char* name;
  };
  // 96 px input, batch 16: layer1 maps are 24x24, each later layer halves them.
  const Shape shapes[] = {{64, 576, 24 * 24 * 16, "layer1 64<-64"},
                          {128, 1152, 12 * 12 * 16, "layer2 128<-128"},
                          {256, 2304, 6 * 6 * 16, "layer3 256<-256"},
                          {512, 4608, 3 * 3 * 16, "layer4 512<-512"}};
  Eigen::setNbThreads(1);
  for (const Shape& s : shapes) {
    const Eigen::MatrixXf a = Eigen::MatrixXf::Random(s.m, s.k), b = Eigen::MatrixXf::Random(s.k, s.n);
    Eigen::MatrixXf c(s.m, s.n);
    c.noalias() = a * b;  // warm-up: page in, fill the caches
    double best = 1e30;
    for (int repeat = 0; repeat < 5; ++repeat) {
      const auto start = std::chrono::steady_clock::now();
      c.noalias() = a * b;
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::printf("%-18s %7.1f GFLOP/s\n", s.name, 2.0 * s.m * s.k * s.n / best / 1e9);
  }
  return 0;
}
