//go:build amd64

#include "textflag.h"

// AVX2+FMA loop of GroupNorm's fused affine + SiLU: dst = t·sigmoid(t) with
// t = src·a + b, 8 values at a time, exp by the same Cephes expf as gnExp.

// Constants, each replicated 8 times: the clamp of -t (88.3, -87.3), log2(e),
// ln2 split in two (0.693359375, -2.12194440e-4), the exp polynomial
// (1.98756915e-4 … 0.500000012), 1, and the exponent bias 127 (int32).
DATA gnc<>+0(SB)/4, $0x42b0999a
DATA gnc<>+4(SB)/4, $0x42b0999a
DATA gnc<>+8(SB)/4, $0x42b0999a
DATA gnc<>+12(SB)/4, $0x42b0999a
DATA gnc<>+16(SB)/4, $0x42b0999a
DATA gnc<>+20(SB)/4, $0x42b0999a
DATA gnc<>+24(SB)/4, $0x42b0999a
DATA gnc<>+28(SB)/4, $0x42b0999a
DATA gnc<>+32(SB)/4, $0xc2ae999a
DATA gnc<>+36(SB)/4, $0xc2ae999a
DATA gnc<>+40(SB)/4, $0xc2ae999a
DATA gnc<>+44(SB)/4, $0xc2ae999a
DATA gnc<>+48(SB)/4, $0xc2ae999a
DATA gnc<>+52(SB)/4, $0xc2ae999a
DATA gnc<>+56(SB)/4, $0xc2ae999a
DATA gnc<>+60(SB)/4, $0xc2ae999a
DATA gnc<>+64(SB)/4, $0x3fb8aa3b
DATA gnc<>+68(SB)/4, $0x3fb8aa3b
DATA gnc<>+72(SB)/4, $0x3fb8aa3b
DATA gnc<>+76(SB)/4, $0x3fb8aa3b
DATA gnc<>+80(SB)/4, $0x3fb8aa3b
DATA gnc<>+84(SB)/4, $0x3fb8aa3b
DATA gnc<>+88(SB)/4, $0x3fb8aa3b
DATA gnc<>+92(SB)/4, $0x3fb8aa3b
DATA gnc<>+96(SB)/4, $0x3f318000
DATA gnc<>+100(SB)/4, $0x3f318000
DATA gnc<>+104(SB)/4, $0x3f318000
DATA gnc<>+108(SB)/4, $0x3f318000
DATA gnc<>+112(SB)/4, $0x3f318000
DATA gnc<>+116(SB)/4, $0x3f318000
DATA gnc<>+120(SB)/4, $0x3f318000
DATA gnc<>+124(SB)/4, $0x3f318000
DATA gnc<>+128(SB)/4, $0xb95e8083
DATA gnc<>+132(SB)/4, $0xb95e8083
DATA gnc<>+136(SB)/4, $0xb95e8083
DATA gnc<>+140(SB)/4, $0xb95e8083
DATA gnc<>+144(SB)/4, $0xb95e8083
DATA gnc<>+148(SB)/4, $0xb95e8083
DATA gnc<>+152(SB)/4, $0xb95e8083
DATA gnc<>+156(SB)/4, $0xb95e8083
DATA gnc<>+160(SB)/4, $0x39506967
DATA gnc<>+164(SB)/4, $0x39506967
DATA gnc<>+168(SB)/4, $0x39506967
DATA gnc<>+172(SB)/4, $0x39506967
DATA gnc<>+176(SB)/4, $0x39506967
DATA gnc<>+180(SB)/4, $0x39506967
DATA gnc<>+184(SB)/4, $0x39506967
DATA gnc<>+188(SB)/4, $0x39506967
DATA gnc<>+192(SB)/4, $0x3ab743ce
DATA gnc<>+196(SB)/4, $0x3ab743ce
DATA gnc<>+200(SB)/4, $0x3ab743ce
DATA gnc<>+204(SB)/4, $0x3ab743ce
DATA gnc<>+208(SB)/4, $0x3ab743ce
DATA gnc<>+212(SB)/4, $0x3ab743ce
DATA gnc<>+216(SB)/4, $0x3ab743ce
DATA gnc<>+220(SB)/4, $0x3ab743ce
DATA gnc<>+224(SB)/4, $0x3c088908
DATA gnc<>+228(SB)/4, $0x3c088908
DATA gnc<>+232(SB)/4, $0x3c088908
DATA gnc<>+236(SB)/4, $0x3c088908
DATA gnc<>+240(SB)/4, $0x3c088908
DATA gnc<>+244(SB)/4, $0x3c088908
DATA gnc<>+248(SB)/4, $0x3c088908
DATA gnc<>+252(SB)/4, $0x3c088908
DATA gnc<>+256(SB)/4, $0x3d2aa9c1
DATA gnc<>+260(SB)/4, $0x3d2aa9c1
DATA gnc<>+264(SB)/4, $0x3d2aa9c1
DATA gnc<>+268(SB)/4, $0x3d2aa9c1
DATA gnc<>+272(SB)/4, $0x3d2aa9c1
DATA gnc<>+276(SB)/4, $0x3d2aa9c1
DATA gnc<>+280(SB)/4, $0x3d2aa9c1
DATA gnc<>+284(SB)/4, $0x3d2aa9c1
DATA gnc<>+288(SB)/4, $0x3e2aaaaa
DATA gnc<>+292(SB)/4, $0x3e2aaaaa
DATA gnc<>+296(SB)/4, $0x3e2aaaaa
DATA gnc<>+300(SB)/4, $0x3e2aaaaa
DATA gnc<>+304(SB)/4, $0x3e2aaaaa
DATA gnc<>+308(SB)/4, $0x3e2aaaaa
DATA gnc<>+312(SB)/4, $0x3e2aaaaa
DATA gnc<>+316(SB)/4, $0x3e2aaaaa
DATA gnc<>+320(SB)/4, $0x3f000000
DATA gnc<>+324(SB)/4, $0x3f000000
DATA gnc<>+328(SB)/4, $0x3f000000
DATA gnc<>+332(SB)/4, $0x3f000000
DATA gnc<>+336(SB)/4, $0x3f000000
DATA gnc<>+340(SB)/4, $0x3f000000
DATA gnc<>+344(SB)/4, $0x3f000000
DATA gnc<>+348(SB)/4, $0x3f000000
DATA gnc<>+352(SB)/4, $0x3f800000
DATA gnc<>+356(SB)/4, $0x3f800000
DATA gnc<>+360(SB)/4, $0x3f800000
DATA gnc<>+364(SB)/4, $0x3f800000
DATA gnc<>+368(SB)/4, $0x3f800000
DATA gnc<>+372(SB)/4, $0x3f800000
DATA gnc<>+376(SB)/4, $0x3f800000
DATA gnc<>+380(SB)/4, $0x3f800000
DATA gnc<>+384(SB)/4, $0x0000007f
DATA gnc<>+388(SB)/4, $0x0000007f
DATA gnc<>+392(SB)/4, $0x0000007f
DATA gnc<>+396(SB)/4, $0x0000007f
DATA gnc<>+400(SB)/4, $0x0000007f
DATA gnc<>+404(SB)/4, $0x0000007f
DATA gnc<>+408(SB)/4, $0x0000007f
DATA gnc<>+412(SB)/4, $0x0000007f
GLOBL gnc<>(SB), RODATA|NOPTR, $416

// func gnSiLUAffineAVX2(dst, src []float32, a, b float32)
// len(src) is a multiple of 8 and len(dst) >= len(src).
TEXT ·gnSiLUAffineAVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	VBROADCASTSS a+48(FP), Y8
	VBROADCASTSS b+52(FP), Y9
	VXORPS Y7, Y7, Y7
	SHRQ $3, CX
	JZ   sdone
sloop:
	VMOVUPS (SI), Y0
	VFMADD213PS Y9, Y8, Y0           // t = x·a + b
	VSUBPS  Y0, Y7, Y1               // u = -t
	VMINPS  gnc<>+0(SB), Y1, Y1
	VMAXPS  gnc<>+32(SB), Y1, Y1
	VMULPS  gnc<>+64(SB), Y1, Y2
	VROUNDPS $0, Y2, Y2              // n = round(u·log2 e)
	VFNMADD231PS gnc<>+96(SB), Y2, Y1  // r = u - n·ln2
	VFNMADD231PS gnc<>+128(SB), Y2, Y1
	VMULPS  Y1, Y1, Y4               // r²
	VMOVUPS gnc<>+160(SB), Y5
	VFMADD213PS gnc<>+192(SB), Y1, Y5
	VFMADD213PS gnc<>+224(SB), Y1, Y5
	VFMADD213PS gnc<>+256(SB), Y1, Y5
	VFMADD213PS gnc<>+288(SB), Y1, Y5
	VFMADD213PS gnc<>+320(SB), Y1, Y5
	VFMADD213PS Y1, Y4, Y5           // p·r² + r
	VADDPS  gnc<>+352(SB), Y5, Y5
	VCVTPS2DQ Y2, Y6                 // 2^n from the exponent bits
	VPADDD  gnc<>+384(SB), Y6, Y6
	VPSLLD  $23, Y6, Y6
	VMULPS  Y6, Y5, Y5               // exp(-t)
	VADDPS  gnc<>+352(SB), Y5, Y5
	VDIVPS  Y5, Y0, Y0               // t / (1 + exp(-t))
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  sloop
sdone:
	VZEROUPPER
	RET
