//go:build amd64

#include "textflag.h"

// The micro-kernel of matmul.go's row-invariant product: one tile of 6 rows
// by 16 columns of C. Each of the 96 outputs is one scalar chain of fused
// multiply-adds in k order, acc = fma(a[r][p], b[p][c], acc), kept in its own
// vector lane; no lane ever mixes with another, so an output's bits depend on
// its row of A and column of B alone (docs/numerics.md).
//
// Registers: Y0…Y11 accumulate rows 0…5 (two vectors of 8 columns each),
// Y12/Y13 hold b[p][0:16], Y14/Y15 the broadcast a[r][p].

// STEP(oa, ob) is one k step with A at oa(AX) (6 floats) and B at ob(BX)
// (16 floats).
#define STEP(oa, ob) \
	VMOVUPS ob(BX), Y12 \
	VMOVUPS ob+32(BX), Y13 \
	VBROADCASTSS oa(AX), Y14 \
	VFMADD231PS Y12, Y14, Y0 \
	VFMADD231PS Y13, Y14, Y1 \
	VBROADCASTSS oa+4(AX), Y15 \
	VFMADD231PS Y12, Y15, Y2 \
	VFMADD231PS Y13, Y15, Y3 \
	VBROADCASTSS oa+8(AX), Y14 \
	VFMADD231PS Y12, Y14, Y4 \
	VFMADD231PS Y13, Y14, Y5 \
	VBROADCASTSS oa+12(AX), Y15 \
	VFMADD231PS Y12, Y15, Y6 \
	VFMADD231PS Y13, Y15, Y7 \
	VBROADCASTSS oa+16(AX), Y14 \
	VFMADD231PS Y12, Y14, Y8 \
	VFMADD231PS Y13, Y14, Y9 \
	VBROADCASTSS oa+20(AX), Y15 \
	VFMADD231PS Y12, Y15, Y10 \
	VFMADD231PS Y13, Y15, Y11

// func tile6x16AVX2(kc int, a, b, c *float32, ldc int, bias *float32, flags int)
//
// a: kc steps of 6 floats (a packed sliver), b: kc steps of 16 floats (a
// packed panel), c: the tile, row stride ldc floats. flags&1: continue the
// chains from the values in c (a later k block); otherwise start from 0.
// flags&2: add bias[0:16] to every row after the last step.
TEXT ·tile6x16AVX2(SB), NOSPLIT, $0-56
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8                // row stride in bytes
	LEAQ (R8)(R8*2), R11       // 3 rows
	LEAQ (DX)(R8*4), R12       // row 4
	MOVQ flags+48(FP), R10

	TESTQ $1, R10
	JZ    zero
	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS (DX)(R8*1), Y2
	VMOVUPS 32(DX)(R8*1), Y3
	VMOVUPS (DX)(R8*2), Y4
	VMOVUPS 32(DX)(R8*2), Y5
	VMOVUPS (DX)(R11*1), Y6
	VMOVUPS 32(DX)(R11*1), Y7
	VMOVUPS (R12), Y8
	VMOVUPS 32(R12), Y9
	VMOVUPS (R12)(R8*1), Y10
	VMOVUPS 32(R12)(R8*1), Y11
	JMP   loop4

zero:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

loop4:
	CMPQ CX, $4
	JLT  tail
	PREFETCHT0 512(BX)
	STEP(0, 0)
	STEP(24, 64)
	PREFETCHT0 576(BX)
	STEP(48, 128)
	STEP(72, 192)
	ADDQ $96, AX
	ADDQ $256, BX
	SUBQ $4, CX
	JMP  loop4

tail:
	TESTQ CX, CX
	JZ    done
	STEP(0, 0)
	ADDQ $24, AX
	ADDQ $64, BX
	DECQ CX
	JMP  tail

done:
	TESTQ $2, R10
	JZ    store
	MOVQ  bias+40(FP), R9
	VMOVUPS (R9), Y12
	VMOVUPS 32(R9), Y13
	VADDPS Y12, Y0, Y0
	VADDPS Y13, Y1, Y1
	VADDPS Y12, Y2, Y2
	VADDPS Y13, Y3, Y3
	VADDPS Y12, Y4, Y4
	VADDPS Y13, Y5, Y5
	VADDPS Y12, Y6, Y6
	VADDPS Y13, Y7, Y7
	VADDPS Y12, Y8, Y8
	VADDPS Y13, Y9, Y9
	VADDPS Y12, Y10, Y10
	VADDPS Y13, Y11, Y11

store:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, (DX)(R8*1)
	VMOVUPS Y3, 32(DX)(R8*1)
	VMOVUPS Y4, (DX)(R8*2)
	VMOVUPS Y5, 32(DX)(R8*2)
	VMOVUPS Y6, (DX)(R11*1)
	VMOVUPS Y7, 32(DX)(R11*1)
	VMOVUPS Y8, (R12)
	VMOVUPS Y9, 32(R12)
	VMOVUPS Y10, (R12)(R8*1)
	VMOVUPS Y11, 32(R12)(R8*1)
	VZEROUPPER
	RET

// The AVX-512 micro-kernel: a tile of 12 rows by 32 columns (two packed
// panels), the same chains as tile6x16AVX2 in 16-lane vectors. Z0…Z23
// accumulate rows 0…11 (even: the first panel's 16 columns, odd: the
// second's), Z24/Z25 hold b, Z26/Z27 the broadcast a.

#define STEP512(oa) \
	VMOVUPS (BX), Z24 \
	VMOVUPS (BX)(R9*1), Z25 \
	VBROADCASTSS oa(AX), Z26 \
	VFMADD231PS Z24, Z26, Z0 \
	VFMADD231PS Z25, Z26, Z1 \
	VBROADCASTSS oa+4(AX), Z27 \
	VFMADD231PS Z24, Z27, Z2 \
	VFMADD231PS Z25, Z27, Z3 \
	VBROADCASTSS oa+8(AX), Z26 \
	VFMADD231PS Z24, Z26, Z4 \
	VFMADD231PS Z25, Z26, Z5 \
	VBROADCASTSS oa+12(AX), Z27 \
	VFMADD231PS Z24, Z27, Z6 \
	VFMADD231PS Z25, Z27, Z7 \
	VBROADCASTSS oa+16(AX), Z26 \
	VFMADD231PS Z24, Z26, Z8 \
	VFMADD231PS Z25, Z26, Z9 \
	VBROADCASTSS oa+20(AX), Z27 \
	VFMADD231PS Z24, Z27, Z10 \
	VFMADD231PS Z25, Z27, Z11 \
	VBROADCASTSS oa+24(AX), Z26 \
	VFMADD231PS Z24, Z26, Z12 \
	VFMADD231PS Z25, Z26, Z13 \
	VBROADCASTSS oa+28(AX), Z27 \
	VFMADD231PS Z24, Z27, Z14 \
	VFMADD231PS Z25, Z27, Z15 \
	VBROADCASTSS oa+32(AX), Z26 \
	VFMADD231PS Z24, Z26, Z16 \
	VFMADD231PS Z25, Z26, Z17 \
	VBROADCASTSS oa+36(AX), Z27 \
	VFMADD231PS Z24, Z27, Z18 \
	VFMADD231PS Z25, Z27, Z19 \
	VBROADCASTSS oa+40(AX), Z26 \
	VFMADD231PS Z24, Z26, Z20 \
	VFMADD231PS Z25, Z26, Z21 \
	VBROADCASTSS oa+44(AX), Z27 \
	VFMADD231PS Z24, Z27, Z22 \
	VFMADD231PS Z25, Z27, Z23 \
	ADDQ $64, BX

// ROW512(op, lo, hi) applies op to one row of the tile at R12 and steps R12.
#define LOADROW(lo, hi) \
	VMOVUPS (R12), lo \
	VMOVUPS 64(R12), hi \
	ADDQ    R8, R12

#define STOREROW(lo, hi) \
	VMOVUPS lo, (R12) \
	VMOVUPS hi, 64(R12) \
	ADDQ    R8, R12

#define BIASROW(lo, hi) \
	VADDPS Z24, lo, lo \
	VADDPS Z25, hi, hi

// func tile12x32AVX512(kc int, a, b *float32, stride int, c *float32, ldc int, bias *float32, flags int)
//
// a: kc steps of 12 floats; b: kc steps of 16 floats of the first panel, the
// second panel starting stride floats later; c: the tile, row stride ldc
// floats; bias: 32 floats. flags as for tile6x16AVX2.
TEXT ·tile12x32AVX512(SB), NOSPLIT, $0-64
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ stride+24(FP), R9
	SHLQ $2, R9
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R8
	SHLQ $2, R8
	MOVQ flags+56(FP), R10

	TESTQ $1, R10
	JZ    zero512
	MOVQ  DX, R12
	LOADROW(Z0, Z1)
	LOADROW(Z2, Z3)
	LOADROW(Z4, Z5)
	LOADROW(Z6, Z7)
	LOADROW(Z8, Z9)
	LOADROW(Z10, Z11)
	LOADROW(Z12, Z13)
	LOADROW(Z14, Z15)
	LOADROW(Z16, Z17)
	LOADROW(Z18, Z19)
	LOADROW(Z20, Z21)
	LOADROW(Z22, Z23)
	JMP   loop512

zero512:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23

loop512:
	CMPQ CX, $2
	JLT  tail512
	PREFETCHT0 512(BX)
	PREFETCHT0 512(BX)(R9*1)
	STEP512(0)
	STEP512(48)
	ADDQ $96, AX
	SUBQ $2, CX
	JMP  loop512

tail512:
	TESTQ CX, CX
	JZ    done512
	STEP512(0)
	ADDQ $48, AX

done512:
	TESTQ $2, R10
	JZ    store512
	MOVQ  bias+48(FP), R11
	VMOVUPS (R11), Z24
	VMOVUPS 64(R11), Z25
	BIASROW(Z0, Z1)
	BIASROW(Z2, Z3)
	BIASROW(Z4, Z5)
	BIASROW(Z6, Z7)
	BIASROW(Z8, Z9)
	BIASROW(Z10, Z11)
	BIASROW(Z12, Z13)
	BIASROW(Z14, Z15)
	BIASROW(Z16, Z17)
	BIASROW(Z18, Z19)
	BIASROW(Z20, Z21)
	BIASROW(Z22, Z23)

store512:
	MOVQ DX, R12
	STOREROW(Z0, Z1)
	STOREROW(Z2, Z3)
	STOREROW(Z4, Z5)
	STOREROW(Z6, Z7)
	STOREROW(Z8, Z9)
	STOREROW(Z10, Z11)
	STOREROW(Z12, Z13)
	STOREROW(Z14, Z15)
	STOREROW(Z16, Z17)
	STOREROW(Z18, Z19)
	STOREROW(Z20, Z21)
	STOREROW(Z22, Z23)
	VZEROUPPER
	RET
