sdc_test(test_gemm)
sdc_test(test_conv2d)
sdc_test(test_qgemm)
sdc_test(test_amx)
