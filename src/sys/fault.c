/* fault.c: the fault-injection table. Compiled to nothing unless the build
 * defines EDDY_FAULTS (meson -Dfaults=true). */
#include "sys/fault.h"

#ifdef EDDY_FAULTS

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sys/errnames.h"

static const char *const kind_names[] = {
#define EDDY__FAULT_NAME(id, name) name,
    EDDY__FAULT_KINDS(EDDY__FAULT_NAME)
#undef EDDY__FAULT_NAME
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static eddy__fault_rule rules[EDDY__SYS_KIND_COUNT];
static uint64_t calls[EDDY__SYS_KIND_COUNT];
static uint64_t prng_state = 0x9e3779b97f4a7c15u;

/* xorshift64*: a small deterministic generator for p= rules. */
static double prng_next(void) {
  prng_state ^= prng_state >> 12;
  prng_state ^= prng_state << 25;
  prng_state ^= prng_state >> 27;
  return (double)((prng_state * 0x2545f4914f6cdd1du) >> 11) /
         9007199254740992.0;
}

static int parse_spec(const char *spec);

static void read_env(void) {
  const char *spec = getenv("EDDY_FAULTS");
  if (spec && *spec)
    (void)parse_spec(spec);
}

static int fires(const eddy__fault_rule *r, uint64_t n) {
  switch (r->mode) {
  case EDDY__FAULT_NTH:
    return n == r->n;
  case EDDY__FAULT_EVERY:
    return r->n > 0 && n % r->n == 0;
  case EDDY__FAULT_AFTER:
    return n >= r->n;
  case EDDY__FAULT_PROB:
    return prng_next() < r->p;
  case EDDY__FAULT_OFF:
    break;
  }
  return 0;
}

int eddy__fault_check(int kind) {
  int out = 0;
  pthread_once(&env_once, read_env);
  pthread_mutex_lock(&lock);
  calls[kind]++;
  if (fires(&rules[kind], calls[kind]))
    out = rules[kind].is_short ? EDDY__FAULT_SHORT : -rules[kind].err;
  pthread_mutex_unlock(&lock);
  return out;
}

void eddy__fault_set(int kind, const eddy__fault_rule *rule) {
  pthread_once(&env_once, read_env);
  pthread_mutex_lock(&lock);
  rules[kind] = *rule;
  calls[kind] = 0;
  pthread_mutex_unlock(&lock);
}

void eddy__fault_fail_nth(int kind, uint64_t n, int err) {
  eddy__fault_rule r = {.mode = EDDY__FAULT_NTH, .n = n, .err = err};
  eddy__fault_set(kind, &r);
}

void eddy__fault_fail_after(int kind, uint64_t n, int err) {
  eddy__fault_rule r = {.mode = EDDY__FAULT_AFTER, .n = n, .err = err};
  eddy__fault_set(kind, &r);
}

void eddy__fault_reset(void) {
  pthread_once(&env_once, read_env);
  pthread_mutex_lock(&lock);
  memset(rules, 0, sizeof rules);
  memset(calls, 0, sizeof calls);
  pthread_mutex_unlock(&lock);
}

uint64_t eddy__fault_calls(int kind) {
  uint64_t n;
  pthread_mutex_lock(&lock);
  n = calls[kind];
  pthread_mutex_unlock(&lock);
  return n;
}

int eddy__fault_kind(const char *name) {
  for (int i = 0; i < EDDY__SYS_KIND_COUNT; i++)
    if (strcmp(kind_names[i], name) == 0)
      return i;
  return -1;
}

static int errno_value(const char *name) {
#define EDDY__ERRNO_CASE(e)                                                    \
  if (strcmp(name, #e) == 0)                                                   \
    return e;
  EDDY__ERRNO_NAMES(EDDY__ERRNO_CASE)
#undef EDDY__ERRNO_CASE
  return 0;
}

/* Parses "N" fully as an unsigned number; 0 on success. */
static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (*s < '0' || *s > '9')
    return -EINVAL;
  errno = 0;
  *out = strtoull(s, &end, 10);
  return (*end || errno) ? -EINVAL : 0;
}

/* "when" is nth=N, every=K, after=N or p=P. */
static int parse_when(const char *when, eddy__fault_rule *r) {
  static const struct {
    const char *prefix;
    enum eddy__fault_mode mode;
  } modes[] = {{"nth=", EDDY__FAULT_NTH},
               {"every=", EDDY__FAULT_EVERY},
               {"after=", EDDY__FAULT_AFTER}};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    size_t len = strlen(modes[i].prefix);
    if (strncmp(when, modes[i].prefix, len) == 0) {
      r->mode = modes[i].mode;
      return (parse_u64(when + len, &r->n) || r->n == 0) ? -EINVAL : 0;
    }
  }
  if (strncmp(when, "p=", 2) == 0) {
    char *end;
    r->mode = EDDY__FAULT_PROB;
    r->p = strtod(when + 2, &end);
    /* Written so that NaN fails too. */
    return (end == when + 2 || *end || !(r->p >= 0 && r->p <= 1)) ? -EINVAL : 0;
  }
  return -EINVAL;
}

/* One item: "KIND:ERRNO|short:WHEN". */
static int parse_item(char *item, int *kind, eddy__fault_rule *r) {
  char *what = strchr(item, ':');
  char *when = what ? strchr(what + 1, ':') : NULL;
  if (when == NULL)
    return -EINVAL;
  *what++ = '\0';
  *when++ = '\0';
  *kind = eddy__fault_kind(item);
  if (*kind < 0)
    return -EINVAL;
  memset(r, 0, sizeof *r);
  if (strcmp(what, "short") == 0)
    r->is_short = 1;
  else if ((r->err = errno_value(what)) == 0)
    return -EINVAL;
  return parse_when(when, r);
}

static int parse_spec(const char *spec) {
  eddy__fault_rule parsed[EDDY__SYS_KIND_COUNT] = {{0}};
  int set[EDDY__SYS_KIND_COUNT] = {0};
  uint64_t seed = 0;
  char *copy = strdup(spec), *rest = copy, *it;
  int err = copy ? 0 : -ENOMEM;
  while (!err && (it = strsep(&rest, ",")) != NULL) {
    int kind;
    eddy__fault_rule r;
    if (*it == '\0')
      err = -EINVAL;
    else if (strncmp(it, "seed=", 5) == 0) {
      /* 0 would freeze the generator at 0. */
      err = parse_u64(it + 5, &seed);
      if (err == 0 && seed == 0)
        err = -EINVAL;
    } else if ((err = parse_item(it, &kind, &r)) == 0) {
      parsed[kind] = r;
      set[kind] = 1;
    }
  }
  free(copy);
  if (err)
    return err;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < EDDY__SYS_KIND_COUNT; i++)
    if (set[i]) {
      rules[i] = parsed[i];
      calls[i] = 0;
    }
  if (seed)
    prng_state = seed;
  pthread_mutex_unlock(&lock);
  return 0;
}

int eddy__fault_parse(const char *spec) {
  pthread_once(&env_once, read_env);
  return parse_spec(spec);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int eddy__fault_unused;

#endif
