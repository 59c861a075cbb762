//go:build amd64

#include "textflag.h"

// AVX2+FMA inner loops of the element-wise kernels. Each processes the
// largest multiple of 8 elements; the Go wrappers in vec.go do the rest.

// Constants, each replicated 8 times: 0.5, 1, 1/sqrt(2), ±4 (erf clamp), then
// the numerator (x^13 … x^1) and denominator (x^8 … x^0) coefficients of the
// float32 erf of kernels.go.
DATA gc<>+0(SB)/4, $0x3f000000
DATA gc<>+4(SB)/4, $0x3f000000
DATA gc<>+8(SB)/4, $0x3f000000
DATA gc<>+12(SB)/4, $0x3f000000
DATA gc<>+16(SB)/4, $0x3f000000
DATA gc<>+20(SB)/4, $0x3f000000
DATA gc<>+24(SB)/4, $0x3f000000
DATA gc<>+28(SB)/4, $0x3f000000
DATA gc<>+32(SB)/4, $0x3f800000
DATA gc<>+36(SB)/4, $0x3f800000
DATA gc<>+40(SB)/4, $0x3f800000
DATA gc<>+44(SB)/4, $0x3f800000
DATA gc<>+48(SB)/4, $0x3f800000
DATA gc<>+52(SB)/4, $0x3f800000
DATA gc<>+56(SB)/4, $0x3f800000
DATA gc<>+60(SB)/4, $0x3f800000
DATA gc<>+64(SB)/4, $0x3f3504f3
DATA gc<>+68(SB)/4, $0x3f3504f3
DATA gc<>+72(SB)/4, $0x3f3504f3
DATA gc<>+76(SB)/4, $0x3f3504f3
DATA gc<>+80(SB)/4, $0x3f3504f3
DATA gc<>+84(SB)/4, $0x3f3504f3
DATA gc<>+88(SB)/4, $0x3f3504f3
DATA gc<>+92(SB)/4, $0x3f3504f3
DATA gc<>+96(SB)/4, $0x40800000
DATA gc<>+100(SB)/4, $0x40800000
DATA gc<>+104(SB)/4, $0x40800000
DATA gc<>+108(SB)/4, $0x40800000
DATA gc<>+112(SB)/4, $0x40800000
DATA gc<>+116(SB)/4, $0x40800000
DATA gc<>+120(SB)/4, $0x40800000
DATA gc<>+124(SB)/4, $0x40800000
DATA gc<>+128(SB)/4, $0xc0800000
DATA gc<>+132(SB)/4, $0xc0800000
DATA gc<>+136(SB)/4, $0xc0800000
DATA gc<>+140(SB)/4, $0xc0800000
DATA gc<>+144(SB)/4, $0xc0800000
DATA gc<>+148(SB)/4, $0xc0800000
DATA gc<>+152(SB)/4, $0xc0800000
DATA gc<>+156(SB)/4, $0xc0800000
DATA gc<>+160(SB)/4, $0xaf95df0b
DATA gc<>+164(SB)/4, $0xaf95df0b
DATA gc<>+168(SB)/4, $0xaf95df0b
DATA gc<>+172(SB)/4, $0xaf95df0b
DATA gc<>+176(SB)/4, $0xaf95df0b
DATA gc<>+180(SB)/4, $0xaf95df0b
DATA gc<>+184(SB)/4, $0xaf95df0b
DATA gc<>+188(SB)/4, $0xaf95df0b
DATA gc<>+192(SB)/4, $0x32edffee
DATA gc<>+196(SB)/4, $0x32edffee
DATA gc<>+200(SB)/4, $0x32edffee
DATA gc<>+204(SB)/4, $0x32edffee
DATA gc<>+208(SB)/4, $0x32edffee
DATA gc<>+212(SB)/4, $0x32edffee
DATA gc<>+216(SB)/4, $0x32edffee
DATA gc<>+220(SB)/4, $0x32edffee
DATA gc<>+224(SB)/4, $0xb60cff51
DATA gc<>+228(SB)/4, $0xb60cff51
DATA gc<>+232(SB)/4, $0xb60cff51
DATA gc<>+236(SB)/4, $0xb60cff51
DATA gc<>+240(SB)/4, $0xb60cff51
DATA gc<>+244(SB)/4, $0xb60cff51
DATA gc<>+248(SB)/4, $0xb60cff51
DATA gc<>+252(SB)/4, $0xb60cff51
DATA gc<>+256(SB)/4, $0xb86ec2d2
DATA gc<>+260(SB)/4, $0xb86ec2d2
DATA gc<>+264(SB)/4, $0xb86ec2d2
DATA gc<>+268(SB)/4, $0xb86ec2d2
DATA gc<>+272(SB)/4, $0xb86ec2d2
DATA gc<>+276(SB)/4, $0xb86ec2d2
DATA gc<>+280(SB)/4, $0xb86ec2d2
DATA gc<>+284(SB)/4, $0xb86ec2d2
DATA gc<>+288(SB)/4, $0xba40ac63
DATA gc<>+292(SB)/4, $0xba40ac63
DATA gc<>+296(SB)/4, $0xba40ac63
DATA gc<>+300(SB)/4, $0xba40ac63
DATA gc<>+304(SB)/4, $0xba40ac63
DATA gc<>+308(SB)/4, $0xba40ac63
DATA gc<>+312(SB)/4, $0xba40ac63
DATA gc<>+316(SB)/4, $0xba40ac63
DATA gc<>+320(SB)/4, $0xbb41a1f6
DATA gc<>+324(SB)/4, $0xbb41a1f6
DATA gc<>+328(SB)/4, $0xbb41a1f6
DATA gc<>+332(SB)/4, $0xbb41a1f6
DATA gc<>+336(SB)/4, $0xbb41a1f6
DATA gc<>+340(SB)/4, $0xbb41a1f6
DATA gc<>+344(SB)/4, $0xbb41a1f6
DATA gc<>+348(SB)/4, $0xbb41a1f6
DATA gc<>+352(SB)/4, $0xbc83dbd4
DATA gc<>+356(SB)/4, $0xbc83dbd4
DATA gc<>+360(SB)/4, $0xbc83dbd4
DATA gc<>+364(SB)/4, $0xbc83dbd4
DATA gc<>+368(SB)/4, $0xbc83dbd4
DATA gc<>+372(SB)/4, $0xbc83dbd4
DATA gc<>+376(SB)/4, $0xbc83dbd4
DATA gc<>+380(SB)/4, $0xbc83dbd4
DATA gc<>+384(SB)/4, $0xb77460cd
DATA gc<>+388(SB)/4, $0xb77460cd
DATA gc<>+392(SB)/4, $0xb77460cd
DATA gc<>+396(SB)/4, $0xb77460cd
DATA gc<>+400(SB)/4, $0xb77460cd
DATA gc<>+404(SB)/4, $0xb77460cd
DATA gc<>+408(SB)/4, $0xb77460cd
DATA gc<>+412(SB)/4, $0xb77460cd
DATA gc<>+416(SB)/4, $0xb95fbd29
DATA gc<>+420(SB)/4, $0xb95fbd29
DATA gc<>+424(SB)/4, $0xb95fbd29
DATA gc<>+428(SB)/4, $0xb95fbd29
DATA gc<>+432(SB)/4, $0xb95fbd29
DATA gc<>+436(SB)/4, $0xb95fbd29
DATA gc<>+440(SB)/4, $0xb95fbd29
DATA gc<>+444(SB)/4, $0xb95fbd29
DATA gc<>+448(SB)/4, $0xbadc924e
DATA gc<>+452(SB)/4, $0xbadc924e
DATA gc<>+456(SB)/4, $0xbadc924e
DATA gc<>+460(SB)/4, $0xbadc924e
DATA gc<>+464(SB)/4, $0xbadc924e
DATA gc<>+468(SB)/4, $0xbadc924e
DATA gc<>+472(SB)/4, $0xbadc924e
DATA gc<>+476(SB)/4, $0xbadc924e
DATA gc<>+480(SB)/4, $0xbbf19bf8
DATA gc<>+484(SB)/4, $0xbbf19bf8
DATA gc<>+488(SB)/4, $0xbbf19bf8
DATA gc<>+492(SB)/4, $0xbbf19bf8
DATA gc<>+496(SB)/4, $0xbbf19bf8
DATA gc<>+500(SB)/4, $0xbbf19bf8
DATA gc<>+504(SB)/4, $0xbbf19bf8
DATA gc<>+508(SB)/4, $0xbbf19bf8
DATA gc<>+512(SB)/4, $0xbc69b6a7
DATA gc<>+516(SB)/4, $0xbc69b6a7
DATA gc<>+520(SB)/4, $0xbc69b6a7
DATA gc<>+524(SB)/4, $0xbc69b6a7
DATA gc<>+528(SB)/4, $0xbc69b6a7
DATA gc<>+532(SB)/4, $0xbc69b6a7
DATA gc<>+536(SB)/4, $0xbc69b6a7
DATA gc<>+540(SB)/4, $0xbc69b6a7
GLOBL gc<>(SB), RODATA|NOPTR, $544

// func geluBiasAVX2(x, bias []float32)
TEXT ·geluBiasAVX2(SB), NOSPLIT, $0-48
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ bias_base+24(FP), DI
	SHRQ $3, CX
	JZ   gdone
gloop:
	VMOVUPS (SI), Y0
	VADDPS  (DI), Y0, Y0
	VMULPS  gc<>+64(SB), Y0, Y1
	VMINPS  gc<>+96(SB), Y1, Y1
	VMAXPS  gc<>+128(SB), Y1, Y1
	VMULPS  Y1, Y1, Y2
	VMOVUPS gc<>+160(SB), Y3
	VFMADD213PS gc<>+192(SB), Y2, Y3
	VFMADD213PS gc<>+224(SB), Y2, Y3
	VFMADD213PS gc<>+256(SB), Y2, Y3
	VFMADD213PS gc<>+288(SB), Y2, Y3
	VFMADD213PS gc<>+320(SB), Y2, Y3
	VFMADD213PS gc<>+352(SB), Y2, Y3
	VMULPS  Y1, Y3, Y3
	VMOVUPS gc<>+384(SB), Y4
	VFMADD213PS gc<>+416(SB), Y2, Y4
	VFMADD213PS gc<>+448(SB), Y2, Y4
	VFMADD213PS gc<>+480(SB), Y2, Y4
	VFMADD213PS gc<>+512(SB), Y2, Y4
	VDIVPS  Y4, Y3, Y3
	VADDPS  gc<>+32(SB), Y3, Y3
	VMULPS  gc<>+0(SB), Y0, Y0
	VMULPS  Y3, Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  gloop
gdone:
	VZEROUPPER
	RET

// func dotAVX2(a, b []float32) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	SHRQ $3, CX
dloop2:
	CMPQ CX, $2
	JLT  dtail
	VMOVUPS (SI), Y2
	VFMADD231PS (DI), Y2, Y0
	VMOVUPS 32(SI), Y3
	VFMADD231PS 32(DI), Y3, Y1
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  dloop2
dtail:
	TESTQ CX, CX
	JZ    dred
	VMOVUPS (SI), Y2
	VFMADD231PS (DI), Y2, Y0
dred:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func axpyAVX2(dst, x []float32, a float32)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-52
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	VBROADCASTSS a+48(FP), Y0
	SHRQ $3, CX
	JZ   adone
aloop:
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  aloop
adone:
	VZEROUPPER
	RET

// func sumAVX2(x []float32) float32
TEXT ·sumAVX2(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	SHRQ $3, CX
sloop2:
	CMPQ CX, $2
	JLT  stail
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	ADDQ $64, SI
	SUBQ $2, CX
	JMP  sloop2
stail:
	TESTQ CX, CX
	JZ    sred
	VADDPS (SI), Y0, Y0
sred:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func sqDevAVX2(x []float32, mean float32) float32
TEXT ·sqDevAVX2(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS mean+24(FP), Y5
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	SHRQ $3, CX
qloop2:
	CMPQ CX, $2
	JLT  qtail
	VMOVUPS (SI), Y2
	VSUBPS  Y5, Y2, Y2
	VFMADD231PS Y2, Y2, Y0
	VMOVUPS 32(SI), Y3
	VSUBPS  Y5, Y3, Y3
	VFMADD231PS Y3, Y3, Y1
	ADDQ $64, SI
	SUBQ $2, CX
	JMP  qloop2
qtail:
	TESTQ CX, CX
	JZ    qred
	VMOVUPS (SI), Y2
	VSUBPS  Y5, Y2, Y2
	VFMADD231PS Y2, Y2, Y0
qred:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func normModAVX2(dst, x, gamma, beta, scale, shift []float32, mean, rstd float32)
// dst = ((x − mean)·rstd·γ + β)·(1 + scale) + shift
TEXT ·normModAVX2(SB), NOSPLIT, $0-152
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	MOVQ gamma_base+48(FP), R8
	MOVQ beta_base+72(FP), R9
	MOVQ scale_base+96(FP), R10
	MOVQ shift_base+120(FP), R11
	VBROADCASTSS mean+144(FP), Y6
	VBROADCASTSS rstd+148(FP), Y7
	VMOVUPS gc<>+32(SB), Y8
	XORQ AX, AX
	SHRQ $3, CX
	JZ   ndone
nloop:
	VMOVUPS (SI)(AX*1), Y2
	VSUBPS  Y6, Y2, Y2
	VMULPS  Y7, Y2, Y2
	VMOVUPS (R9)(AX*1), Y3
	VFMADD231PS (R8)(AX*1), Y2, Y3
	VADDPS  (R10)(AX*1), Y8, Y4
	VMOVUPS (R11)(AX*1), Y5
	VFMADD231PS Y4, Y3, Y5
	VMOVUPS Y5, (DI)(AX*1)
	ADDQ $32, AX
	DECQ CX
	JNZ  nloop
ndone:
	VZEROUPPER
	RET

// func normModPlainAVX2(dst, x, scale, shift []float32, mean, rstd float32)
// dst = (x − mean)·rstd·(1 + scale) + shift
TEXT ·normModPlainAVX2(SB), NOSPLIT, $0-104
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	MOVQ scale_base+48(FP), R10
	MOVQ shift_base+72(FP), R11
	VBROADCASTSS mean+96(FP), Y6
	VBROADCASTSS rstd+100(FP), Y7
	VMOVUPS gc<>+32(SB), Y8
	XORQ AX, AX
	SHRQ $3, CX
	JZ   pdone
ploop:
	VMOVUPS (SI)(AX*1), Y2
	VSUBPS  Y6, Y2, Y2
	VMULPS  Y7, Y2, Y2
	VADDPS  (R10)(AX*1), Y8, Y4
	VMOVUPS (R11)(AX*1), Y5
	VFMADD231PS Y4, Y2, Y5
	VMOVUPS Y5, (DI)(AX*1)
	ADDQ $32, AX
	DECQ CX
	JNZ  ploop
pdone:
	VZEROUPPER
	RET

// func gatedAddAVX2(h, base, gate, t, bias []float32)
// h = base + gate·(t + bias)
TEXT ·gatedAddAVX2(SB), NOSPLIT, $0-120
	MOVQ h_base+0(FP), DI
	MOVQ h_len+8(FP), CX
	MOVQ base_base+24(FP), SI
	MOVQ gate_base+48(FP), R8
	MOVQ t_base+72(FP), R9
	MOVQ bias_base+96(FP), R10
	XORQ AX, AX
	SHRQ $3, CX
	JZ   rdone
rloop:
	VMOVUPS (R9)(AX*1), Y2
	VADDPS  (R10)(AX*1), Y2, Y2
	VMOVUPS (SI)(AX*1), Y3
	VFMADD231PS (R8)(AX*1), Y2, Y3
	VMOVUPS Y3, (DI)(AX*1)
	ADDQ $32, AX
	DECQ CX
	JNZ  rloop
rdone:
	VZEROUPPER
	RET

// func add3AVX2(dst, a, b, c []float32)
// dst = (a + b) + c
TEXT ·add3AVX2(SB), NOSPLIT, $0-96
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ b_base+48(FP), R8
	MOVQ c_base+72(FP), R9
	XORQ AX, AX
	SHRQ $3, CX
	JZ   edone
eloop:
	VMOVUPS (SI)(AX*1), Y2
	VADDPS  (R8)(AX*1), Y2, Y2
	VADDPS  (R9)(AX*1), Y2, Y2
	VMOVUPS Y2, (DI)(AX*1)
	ADDQ $32, AX
	DECQ CX
	JNZ  eloop
edone:
	VZEROUPPER
	RET

// func headDotsAVX2(q, k, out []float32, hd int)
// out[h] = Σ_i q[h·hd+i]·k[h·hd+i] for h < len(out); hd is a multiple of 8.
TEXT ·headDotsAVX2(SB), NOSPLIT, $0-80
	MOVQ q_base+0(FP), SI
	MOVQ k_base+24(FP), DI
	MOVQ out_base+48(FP), R8
	MOVQ out_len+56(FP), R9
	MOVQ hd+72(FP), R10
	SHRQ $3, R10
	TESTQ R9, R9
	JZ    hddone
	TESTQ R10, R10
	JZ    hddone
hdloop:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ R10, CX
hdinner:
	CMPQ CX, $2
	JLT  hdtail
	VMOVUPS (SI), Y2
	VFMADD231PS (DI), Y2, Y0
	VMOVUPS 32(SI), Y3
	VFMADD231PS 32(DI), Y3, Y1
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, CX
	JMP  hdinner
hdtail:
	TESTQ CX, CX
	JZ    hdred
	VMOVUPS (SI), Y2
	VFMADD231PS (DI), Y2, Y0
	ADDQ $32, SI
	ADDQ $32, DI
hdred:
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	MOVSS X0, (R8)
	ADDQ $4, R8
	DECQ R9
	JNZ  hdloop
hddone:
	VZEROUPPER
	RET

// func headAxpyAVX2(o, v, p []float32, hd int)
// o[h·hd+i] += p[h]·v[h·hd+i] for h < len(p); hd is a multiple of 8.
TEXT ·headAxpyAVX2(SB), NOSPLIT, $0-80
	MOVQ o_base+0(FP), DI
	MOVQ v_base+24(FP), SI
	MOVQ p_base+48(FP), R8
	MOVQ p_len+56(FP), R9
	MOVQ hd+72(FP), R10
	SHRQ $3, R10
	TESTQ R9, R9
	JZ    hadone
	TESTQ R10, R10
	JZ    hadone
haloop:
	VBROADCASTSS (R8), Y0
	MOVQ R10, CX
hainner:
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  hainner
	ADDQ $4, R8
	DECQ R9
	JNZ  haloop
hadone:
	VZEROUPPER
	RET
