// The emulator's scheduler and the table of kernels (see emu.h).
#define GECA_EMU 1
#include "kernels_cu.h" // a copy of ../kernels.cu (go generate), so the build cache sees its changes

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "emu_api.h"

// ---- fibers ------------------------------------------------------------------------
//
// A context switch saves the callee-saved registers on the current stack and
// moves to the other stack (x86-64: a few instructions, no system call;
// elsewhere ucontext, which is slower but portable).

#if defined(__x86_64__)
extern "C" void emu_switch(void** save, void* load);
__asm__(R"(
	.pushsection .text
	.globl emu_switch
	.type emu_switch, @function
emu_switch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	subq $16, %rsp
	stmxcsr 8(%rsp)
	fnstcw (%rsp)
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	ldmxcsr 8(%rsp)
	fldcw (%rsp)
	addq $16, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size emu_switch, .-emu_switch
	.popsection
)");

namespace {
struct Context {
	void* sp = nullptr;
};

// start prepares ctx to run entry() on stack [lo, lo+size) at the first
// switch to it.
void start(Context& ctx, char* lo, size_t size, void (*entry)()) {
	uintptr_t top = (reinterpret_cast<uintptr_t>(lo) + size) & ~uintptr_t(15);
	uint64_t* sp = reinterpret_cast<uint64_t*>(top);
	*--sp = 0;                                       // entry's return address: it never returns
	*--sp = reinterpret_cast<uint64_t>(entry);       // where emu_switch's ret goes
	for (int i = 0; i < 6; i++) *--sp = 0;           // rbp rbx r12 r13 r14 r15
	sp -= 2;                                         // x87 control word, MXCSR
	uint32_t mxcsr;
	uint16_t fcw;
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fcw));
	std::memcpy(reinterpret_cast<char*>(sp), &fcw, 2);
	std::memcpy(reinterpret_cast<char*>(sp) + 8, &mxcsr, 4);
	ctx.sp = sp;
}

void jump(Context& from, Context& to) { emu_switch(&from.sp, to.sp); }
} // namespace
#else
#include <ucontext.h>
namespace {
struct Context {
	ucontext_t uc;
};
void start(Context& ctx, char* lo, size_t size, void (*entry)()) {
	getcontext(&ctx.uc);
	ctx.uc.uc_stack.ss_sp = lo;
	ctx.uc.uc_stack.ss_size = size;
	ctx.uc.uc_link = nullptr;
	makecontext(&ctx.uc, entry, 0);
}
void jump(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
} // namespace
#endif

namespace emu {
dim3 threadIdx_, blockIdx_, blockDim_, gridDim_;
constexpr size_t kStack = 128 << 10; // bytes of stack per emulated thread

namespace {
enum State { RUN, WAIT_BLOCK, WAIT_WARP, DONE };

struct Fiber {
	Context ctx;
	State state;
	dim3 tid;
};

// Stacks are kept from launch to launch (allocating and touching fresh
// ones for every launch costs more than the kernels).
std::vector<char*> stacks;

char* stack(unsigned i) {
	while (stacks.size() <= i) stacks.push_back(static_cast<char*>(std::malloc(kStack)));
	return stacks[i];
}

// Launch is one kernel launch: its threads are fibers that run the kernel
// once per block, the scheduler restarting them for each block.
struct Launch {
	std::vector<Fiber> fibers;
	std::vector<uint64_t> slots; // 32 per warp
	Context sched;
	int cur = -1;
	std::function<void()> body;
	std::string error;
};

Launch* blk = nullptr;

void yield(State s) {
	Fiber& f = blk->fibers[blk->cur];
	f.state = s;
	jump(f.ctx, blk->sched);
	threadIdx_ = f.tid; // resumed
}

void entry() {
	for (;;) {
		blk->body();
		yield(DONE);
	}
}

// run_block executes the current block: fibers run until they wait or
// finish; a barrier opens when all the live threads it concerns wait at it.
bool run_block(unsigned n) {
	Launch& b = *blk;
	for (unsigned i = 0; i < n; i++) b.fibers[i].state = RUN;
	const unsigned warps = (n + 31) / 32;
	for (;;) {
		bool ran = false;
		for (unsigned i = 0; i < n; i++) {
			if (b.fibers[i].state != RUN) continue;
			ran = true;
			b.cur = (int)i;
			threadIdx_ = b.fibers[i].tid;
			jump(b.sched, b.fibers[i].ctx);
		}
		if (ran) continue;
		bool live = false, allBlock = true, released = false;
		for (unsigned i = 0; i < n; i++) {
			const State s = b.fibers[i].state;
			if (s == DONE) continue;
			live = true;
			if (s != WAIT_BLOCK) allBlock = false;
		}
		if (!live) return true;
		if (allBlock) {
			for (unsigned i = 0; i < n; i++)
				if (b.fibers[i].state == WAIT_BLOCK) b.fibers[i].state = RUN;
			continue;
		}
		for (unsigned w = 0; w < warps; w++) {
			bool any = false, all = true;
			for (unsigned i = w * 32; i < n && i < w * 32 + 32; i++) {
				const State s = b.fibers[i].state;
				if (s == DONE) continue;
				any = true;
				if (s != WAIT_WARP) all = false;
			}
			if (any && all) {
				for (unsigned i = w * 32; i < n && i < w * 32 + 32; i++)
					if (b.fibers[i].state == WAIT_WARP) b.fibers[i].state = RUN;
				released = true;
			}
		}
		if (!released) {
			b.error = "deadlock: the threads of a block wait at different barriers";
			return false;
		}
	}
}
} // namespace

void sync_block() { yield(WAIT_BLOCK); }
void sync_warp() { yield(WAIT_WARP); }
uint64_t* warp_slots() { return blk->slots.data() + (blk->cur / 32) * 32; }
} // namespace emu

// ---- the kernel table -------------------------------------------------------------

namespace {
template <typename T>
T arg(uint64_t v) {
	if constexpr (std::is_pointer_v<T>) {
		return reinterpret_cast<T>(static_cast<uintptr_t>(v));
	} else if constexpr (std::is_same_v<T, float>) {
		const uint32_t u = static_cast<uint32_t>(v);
		float f;
		std::memcpy(&f, &u, 4);
		return f;
	} else {
		static_assert(std::is_same_v<T, int>, "kernel parameters are pointers, int or float");
		return static_cast<int>(static_cast<int32_t>(static_cast<uint32_t>(v)));
	}
}

template <typename... A, size_t... I>
void call(void (*f)(A...), const std::vector<uint64_t>& a, std::index_sequence<I...>) {
	f(arg<A>(a[I])...);
}

template <typename... A>
std::function<void()> bind_kernel(void (*f)(A...), const uint64_t* a, int n, std::string* err) {
	if (n != (int)sizeof...(A)) {
		*err = "wrong number of kernel arguments: " + std::to_string(n) + ", want " + std::to_string(sizeof...(A));
		return nullptr;
	}
	std::vector<uint64_t> args(a, a + n);
	return [f, args] { call(f, args, std::index_sequence_for<A...>{}); };
}

struct Entry {
	const char* name;
	std::function<void()> (*bind)(const uint64_t*, int, std::string*);
};

#define KERNEL(name) \
	{ #name, [](const uint64_t* a, int n, std::string* e) { return bind_kernel(name, a, n, e); } }

const Entry kernels[] = {
    KERNEL(gemm128v), KERNEL(gemm128s), KERNEL(gemm64v),  KERNEL(gemm64s),      KERNEL(gemm_tf32),
    KERNEL(gemm_bf16), KERNEL(embed_ln), KERNEL(resid_ln), KERNEL(attn), KERNEL(apply_update), KERNEL(silu),
    KERNEL(gather_rows), KERNEL(bias_act),
};
} // namespace

extern "C" int emu_kernel(const char* name) {
	for (size_t i = 0; i < sizeof(kernels) / sizeof(kernels[0]); i++)
		if (std::string(kernels[i].name) == name) return (int)i;
	return -1;
}

extern "C" int emu_launch(int k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          const uint64_t* args, int nargs, char* err, int errlen) {
	auto fail = [&](const std::string& msg) {
		std::snprintf(err, errlen, "%s", msg.c_str());
		return 1;
	};
	if (k < 0 || k >= (int)(sizeof(kernels) / sizeof(kernels[0]))) return fail("no such kernel");
	const unsigned n = bx * by * bz;
	if (n == 0 || n > 1024 || gx == 0 || gy == 0 || gz == 0) return fail("invalid launch dimensions");
	emu::Launch b;
	std::string e;
	b.body = kernels[k].bind(args, nargs, &e);
	if (!b.body) return fail(e);
	b.fibers.resize(n);
	for (unsigned i = 0; i < n; i++) {
		emu::Fiber& f = b.fibers[i];
		f.tid = dim3{i % bx, (i / bx) % by, i / (bx * by)};
		start(f.ctx, emu::stack(i), emu::kStack, emu::entry);
	}
	b.slots.assign(((n + 31) / 32) * 32, 0);
	emu::blk = &b;
	emu::blockDim_ = dim3{bx, by, bz};
	emu::gridDim_ = dim3{gx, gy, gz};
	for (unsigned z = 0; z < gz; z++)
		for (unsigned y = 0; y < gy; y++)
			for (unsigned x = 0; x < gx; x++) {
				emu::blockIdx_ = dim3{x, y, z};
				if (!emu::run_block(n)) {
					emu::blk = nullptr;
					return fail(b.error + " in " + kernels[k].name);
				}
			}
	emu::blk = nullptr;
	return 0;
}

// ---- device memory --------------------------------------------------------------
//
// Each allocation ends at an inaccessible page, so a kernel that reads or
// writes past the end of a buffer (by 16 bytes or more) faults at once
// instead of corrupting its neighbour. Fresh memory is filled with NaNs, so
// reading what was never written shows.

#include <sys/mman.h>
#include <unistd.h>

namespace {
size_t page() { return (size_t)sysconf(_SC_PAGESIZE); }
size_t span(size_t bytes) {
	const size_t body = (bytes + 15) & ~(size_t)15;
	return ((body + page() - 1) / page() + 1) * page();
}
} // namespace

extern "C" void* emu_alloc(size_t bytes) {
	const size_t total = span(bytes);
	char* base = (char*)mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) return nullptr;
	char* guard = base + total - page();
	mprotect(guard, page(), PROT_NONE);
	char* p = guard - ((bytes + 15) & ~(size_t)15);
	std::memset(base, 0xff, guard - base);
	return p;
}

extern "C" void emu_free(void* p, size_t bytes) {
	const size_t total = span(bytes);
	char* guard = (char*)p + ((bytes + 15) & ~(size_t)15);
	munmap(guard + page() - total, total);
}

extern "C" void emu_float2bfloat16_rn(const float* in, float* out, size_t n) {
	for (size_t i = 0; i < n; i++) out[i] = __bfloat162float(__float2bfloat16_rn(in[i]));
}
