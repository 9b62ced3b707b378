# GGUF reader/writer: round trips, exact bytes, and the hostile corpus in tests/hostile/gguf.
sdc_test(test_gguf)
target_compile_definitions(test_gguf PRIVATE SDC_HOSTILE_GGUF_DIR="${CMAKE_SOURCE_DIR}/tests/hostile/gguf")
