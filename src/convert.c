/* convert.c - placeholder until implemented */
