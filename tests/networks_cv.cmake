# The CLIP text encoder (src/clip.c) and the VAE (src/vae.c): goldens from transformers and
# diffusers, thread invariance, tiled decoding, quantized files against their dequantized
# F32 twins. Both tests share the quantized files (made once in Testing/tmp/networks_cv), so
# they never run at the same time (RESOURCE_LOCK): each also writes a ~4 GB F32 twin.
sdc_test(test_clip MODEL TIMEOUT 1800)
set_tests_properties(test_clip PROPERTIES RESOURCE_LOCK networks_cv_quant)
if(SDC_SANITIZE)
  target_compile_definitions(test_clip PRIVATE SANITIZED=1)
endif()

sdc_test(test_vae MODEL TIMEOUT 1800)
set_tests_properties(test_vae PROPERTIES RESOURCE_LOCK networks_cv_quant)
if(SDC_SANITIZE)
  target_compile_definitions(test_vae PRIVATE SANITIZED=1)
endif()
