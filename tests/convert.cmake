# sdc convert: every output type on the random checkpoint; the command's behaviour.
sdc_test(test_convert MODEL TIMEOUT 1800)
sdc_shell_test(test_cli MODEL TIMEOUT 1200)
