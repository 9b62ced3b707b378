# Text to image (src/pipeline.c, src/image.c, src/sha256.c; sources added in cmake/pipeline.cmake):
# infotext, SHA-256 and PNG without a model; the golden run and the command with the random checkpoint.
sdc_test(test_infotext TIMEOUT 60)
sdc_test(test_pipeline MODEL TIMEOUT 3600)
sdc_shell_test(test_generate_cli MODEL TIMEOUT 1800)
sdc_test(test_emphasis)
