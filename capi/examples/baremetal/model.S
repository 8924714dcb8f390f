/* The model linked into the image, 64-byte aligned (BERTQ_MODEL: its path, from the build). */
    .section .rodata.model, "a"
    .balign 64
    .global bertq_model, bertq_model_end
bertq_model:
    .incbin BERTQ_MODEL
bertq_model_end:
