# Text conditioning: the CLIP BPE tokenizer and the A1111 prompt parser.
sdc_test(test_tokenizer TIMEOUT 60)
sdc_test(test_prompt TIMEOUT 60)
