# Tests of the lead's core modules (tensor types, thread pool).
sdc_test(test_threadpool)
sdc_test(test_ops)
sdc_test(test_vocab)
add_test(NAME test_symbols COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_symbols.sh)
set_tests_properties(test_symbols PROPERTIES SKIP_RETURN_CODE 77 ENVIRONMENT "SDC_LIB=$<TARGET_FILE:sdc>")
