# Sampling math: noise generators, sigma schedules, samplers (no networks needed).
# The library target is defined before tests/, so the sources are added to it from here.
target_sources(sdc PRIVATE
  ${CMAKE_SOURCE_DIR}/src/rng.c
  ${CMAKE_SOURCE_DIR}/src/schedule.c
  ${CMAKE_SOURCE_DIR}/src/sampler.c)
sdc_test(test_rng TIMEOUT 60)
sdc_test(test_schedule TIMEOUT 60)
sdc_test(test_sampler TIMEOUT 120)
