/* switch.c: the context switch (see switch.h), one per architecture, and
 * the ucontext fallback.
 *
 * The assembly is top-level asm in a C file rather than a .S file, so that
 * the project stays a C project for meson and the same code builds with
 * gcc and clang. Sanitizer and coverage instrumentation never touch it.
 */
#include <stdint.h>
#include <string.h>

#include "async/switch.h"

#ifndef EDDY_CORO_UCONTEXT

/* eddy__ctx_jump(&from->sp, to->sp): saves the callee-saved registers on
 * the current stack, stores the stack pointer in *from, switches to the
 * stack to and restores the registers saved there, then returns into the
 * other context. */
void eddy__ctx_jump(void **from, void *to);
/* The first "return address" of a new context: calls fn(arg) with the two
 * taken from registers that eddy__ctx_make put in the initial frame. */
void eddy__ctx_start(void);

#if defined(__x86_64__)

/* System V AMD64: rbx, rbp, r12-r15 are callee-saved; the return address
 * is on the stack. A new context's frame holds r15, r14, r13 (fn),
 * r12 (arg), rbx, rbp and eddy__ctx_start as the return address. */
__asm__(
    ".text\n"
    ".globl eddy__ctx_jump\n"
    ".hidden eddy__ctx_jump\n"
    ".type eddy__ctx_jump,@function\n"
    ".p2align 4\n"
    "eddy__ctx_jump:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size eddy__ctx_jump,.-eddy__ctx_jump\n"
    ".globl eddy__ctx_start\n"
    ".hidden eddy__ctx_start\n"
    ".type eddy__ctx_start,@function\n"
    ".p2align 4\n"
    "eddy__ctx_start:\n"
    "  movq %r12, %rdi\n"
    "  callq *%r13\n"
    "  ud2\n"
    ".size eddy__ctx_start,.-eddy__ctx_start\n"
    ".section .note.GNU-stack,\"\",@progbits\n"
    ".text\n");

void eddy__ctx_make(eddy__ctx *ctx, void *stack, size_t size,
                    void (*fn)(void *), void *arg) {
  /* The top, 16-byte aligned, holds a zero word (the end of a backtrace);
   * below it the frame eddy__ctx_jump pops. After its ret the stack
   * pointer is 16-aligned, as the ABI wants before eddy__ctx_start's
   * call. */
  uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
  void **sp = (void **)(top - 16);
  sp[0] = NULL;
  sp[1] = NULL;
  sp -= 7;
  sp[0] = NULL;                    /* r15 */
  sp[1] = NULL;                    /* r14 */
  sp[2] = (void *)fn;              /* r13 */
  sp[3] = arg;                     /* r12 */
  sp[4] = NULL;                    /* rbx */
  sp[5] = NULL;                    /* rbp */
  sp[6] = (void *)eddy__ctx_start; /* return address */
  /* After the pops and the ret, sp = top - 16: aligned. */
  ctx->sp = sp;
}

const char *eddy__ctx_kind(void) {
  return "x86_64";
}

#elif defined(__aarch64__)

/* AAPCS64: x19-x28, the frame pointer x29, the link register x30 and the
 * low halves of v8-v15 (d8-d15) are callee-saved. The frame is 160 bytes;
 * a new context's holds fn in x20, arg in x19 and eddy__ctx_start in x30. */
__asm__(
    ".text\n"
    ".globl eddy__ctx_jump\n"
    ".hidden eddy__ctx_jump\n"
    ".type eddy__ctx_jump,%function\n"
    ".p2align 4\n"
    "eddy__ctx_jump:\n"
    "  sub sp, sp, #160\n"
    "  stp x19, x20, [sp, #0]\n"
    "  stp x21, x22, [sp, #16]\n"
    "  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n"
    "  stp x27, x28, [sp, #64]\n"
    "  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n"
    "  stp d10, d11, [sp, #112]\n"
    "  stp d12, d13, [sp, #128]\n"
    "  stp d14, d15, [sp, #144]\n"
    "  mov x9, sp\n"
    "  str x9, [x0]\n"
    "  mov sp, x1\n"
    "  ldp x19, x20, [sp, #0]\n"
    "  ldp x21, x22, [sp, #16]\n"
    "  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n"
    "  ldp x27, x28, [sp, #64]\n"
    "  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n"
    "  ldp d10, d11, [sp, #112]\n"
    "  ldp d12, d13, [sp, #128]\n"
    "  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #160\n"
    "  ret\n"
    ".size eddy__ctx_jump,.-eddy__ctx_jump\n"
    ".globl eddy__ctx_start\n"
    ".hidden eddy__ctx_start\n"
    ".type eddy__ctx_start,%function\n"
    ".p2align 4\n"
    "eddy__ctx_start:\n"
    "  mov x0, x19\n"
    "  blr x20\n"
    "  brk #0\n"
    ".size eddy__ctx_start,.-eddy__ctx_start\n"
    ".section .note.GNU-stack,\"\",%progbits\n"
    ".text\n");

void eddy__ctx_make(eddy__ctx *ctx, void *stack, size_t size,
                    void (*fn)(void *), void *arg) {
  uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
  void **sp = (void **)(top - 160);
  memset(sp, 0, 160);
  sp[0] = arg;                      /* x19 */
  sp[1] = (void *)fn;               /* x20 */
  sp[11] = (void *)eddy__ctx_start; /* x30 */
  ctx->sp = sp;
}

const char *eddy__ctx_kind(void) {
  return "aarch64";
}

#endif

void eddy__ctx_swap(eddy__ctx *from, eddy__ctx *to) {
  eddy__ctx_jump(&from->sp, to->sp);
}

#else /* EDDY_CORO_UCONTEXT */

/* makecontext passes int arguments only: the pointers go through two. */
static void uc_start(unsigned hi, unsigned lo, unsigned fhi, unsigned flo) {
  uintptr_t a = ((uintptr_t)hi << 16 << 16) | lo;
  uintptr_t f = ((uintptr_t)fhi << 16 << 16) | flo;
  ((void (*)(void *))f)((void *)a);
}

void eddy__ctx_make(eddy__ctx *ctx, void *stack, size_t size,
                    void (*fn)(void *), void *arg) {
  uintptr_t a = (uintptr_t)arg, f = (uintptr_t)fn;
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = stack;
  ctx->uc.uc_stack.ss_size = size;
  ctx->uc.uc_link = NULL;
  makecontext(&ctx->uc, (void (*)(void))uc_start, 4, (unsigned)(a >> 16 >> 16),
              (unsigned)a, (unsigned)(f >> 16 >> 16), (unsigned)f);
}

void eddy__ctx_swap(eddy__ctx *from, eddy__ctx *to) {
  swapcontext(&from->uc, &to->uc);
}

const char *eddy__ctx_kind(void) {
  return "ucontext";
}

#endif
