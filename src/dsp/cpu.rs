//! What the CPU offers the vector kernels, detected at run time (std caches the answer), so each
//! kernel picks its instruction set the same way.

/// Whether the CPU has AVX2 and FMA, the features of the fused multiply-add kernels.
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
