# safetensors reader/writer: test_safetensors runs without the model (round trips, exact bytes,
# the hostile corpus); test_safetensors_model checks the random-weight checkpoint.
sdc_test(test_safetensors)
target_compile_definitions(test_safetensors PRIVATE
  SDC_ST_HOSTILE_DIR="${CMAKE_CURRENT_SOURCE_DIR}/hostile/safetensors")
sdc_test(test_safetensors_model MODEL)
