# The model store (src/model.c): expected tensor list, name mapping, detection, check, the
# random checkpoint and a diffusers folder made from it by tests/make_diffusers.py.
sdc_test(test_model MODEL)
target_compile_definitions(test_model PRIVATE SDC_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
