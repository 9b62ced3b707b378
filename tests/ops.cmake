# Tests of the CPU op kernels (attention, norms, elementwise): fp64 references, SIMD vs
# scalar twin, thread-count invariance.
sdc_test(test_attention)
sdc_test(test_norm)
sdc_test(test_elementwise)
