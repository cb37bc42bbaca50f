enable f16;

