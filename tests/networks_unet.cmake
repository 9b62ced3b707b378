# The SD 1.x UNet (src/unet.c): goldens from diffusers, thread invariance, odd latent sizes,
# quantized files against their dequantized F32 twins.
sdc_test(test_unet MODEL TIMEOUT 1800)
if(SDC_SANITIZE)
  target_compile_definitions(test_unet PRIVATE SANITIZED=1)
endif()
