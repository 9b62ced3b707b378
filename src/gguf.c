/* gguf.c - placeholder until implemented */
