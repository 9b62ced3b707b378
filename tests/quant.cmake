# Block-quantization formats (src/quant.c).
sdc_test(test_quant TIMEOUT 60)
