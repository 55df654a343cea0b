/* Preloaded into CRIU by tests/programs/criu_fault/criu: SIGKILLs $SING_FAULT_KILL_PID (CRIU
 * itself or the app) the first time CRIU creates a memory image (pages-*.img).  CRIU opens its
 * images with openat(); hooking that finds the same point of every dump, which a timer could not. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static int fired;

static void maybe_fire(const char* path, int flags) {
  if (fired || !(flags & O_CREAT) || !path) return;
  const char* base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strncmp(base, "pages-", 6) != 0) return;
  const char* target = getenv("SING_FAULT_KILL_PID");
  if (!target || atoi(target) <= 0) return;
  fired = 1;
  kill((pid_t)atoi(target), SIGKILL);
}

#define HOOK(name)                                                   \
  int name(int dfd, const char* path, int flags, ...) {              \
    static int (*real)(int, const char*, int, ...);                  \
    if (!real) real = (int (*)(int, const char*, int, ...))dlsym(RTLD_NEXT, #name); \
    mode_t mode = 0;                                                 \
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {   \
      va_list ap;                                                    \
      va_start(ap, flags);                                           \
      mode = va_arg(ap, mode_t);                                     \
      va_end(ap);                                                    \
    }                                                                \
    maybe_fire(path, flags);                                         \
    return real(dfd, path, flags, mode);                             \
  }

HOOK(openat)
HOOK(openat64)
