# Sampling math: noise generators, sigma schedules, samplers (no networks needed).
sdc_test(test_rng TIMEOUT 60)
sdc_test(test_schedule TIMEOUT 60)
sdc_test(test_sampler TIMEOUT 120)
