/* Compiling a kernel for several CPUs: each body is compiled for AVX-512, for AVX2+FMA and for
 * the x86-64 baseline, and an ifunc resolver binds the symbol to the best version the CPU
 * runs, once, when the library is loaded (no dispatch state, no per-call cost). */
#ifndef VDB_INDEX_DISPATCH_H
#define VDB_INDEX_DISPATCH_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BODY static inline __attribute__((always_inline))
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
/* Resolvers run while the library is being relocated, before any sanitizer runtime is
 * ready: nothing they call may be instrumented. */
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined", "thread")))
static inline __attribute__((always_inline)) NO_SANITIZE int cpu_has_avx512(void)
{
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
}
static inline __attribute__((always_inline)) NO_SANITIZE int cpu_has_avx2(void)
{
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
/* Defines NAME as an ifunc choosing among NAME_body compiled for each target, with BODY512
 * for AVX-512. */
#define DISPATCH_BODIES(ret, name, params, args, body512)                                     \
	static ret name##_base params { return name##_body args; }                            \
	AVX2 static ret name##_avx2 params { return name##_body args; }                       \
	AVX512 static ret name##_avx512 params { return body512 args; }                       \
	DISPATCH_RESOLVER(ret, name, params, )
/* Defines NAME as an ifunc choosing NAME_avx512, NAME_avx2 or NAME_base, after whatever
 * `first` returns (a check for a newer extension: see codes.c). */
#define DISPATCH_RESOLVER(ret, name, params, first)                                           \
	NO_SANITIZE static ret(*resolve_##name(void)) params                                 \
	{                                                                                     \
		__builtin_cpu_init();                                                         \
		first if (cpu_has_avx512()) return name##_avx512;                             \
		if (cpu_has_avx2())                                                           \
			return name##_avx2;                                                   \
		return name##_base;                                                           \
	}                                                                                     \
	ret name params __attribute__((ifunc("resolve_" #name)));
#define DISPATCH(ret, name, params, args) DISPATCH_BODIES(ret, name, params, args, name##_body)
/* As DISPATCH, with a body of its own for AVX-512 (NAME_wide: 16-float registers). */
#define DISPATCH_WIDE(ret, name, params, args)                                                \
	DISPATCH_BODIES(ret, name, params, args, name##_wide)
#else
#define BODY static inline
#define DISPATCH(ret, name, params, args)                                                     \
	ret name params { return name##_body args; }
#define DISPATCH_WIDE DISPATCH
#endif

#endif
