# Text conditioning: the CLIP BPE tokenizer and the A1111 prompt parser (sources added to the
# library here so the top-level list stays untouched while they are developed in parallel).
target_sources(sdc PRIVATE ${CMAKE_SOURCE_DIR}/src/tokenizer.c ${CMAKE_SOURCE_DIR}/src/prompt.c
                           ${CMAKE_SOURCE_DIR}/src/unicode_tables.c)
sdc_test(test_tokenizer TIMEOUT 60)
sdc_test(test_prompt TIMEOUT 60)
