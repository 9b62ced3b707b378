/* quant.c - placeholder until implemented */
