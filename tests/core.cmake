# Tests of the lead's core modules (tensor types, thread pool).
sdc_test(test_threadpool)
sdc_test(test_ops)
sdc_test(test_vocab)
