/* static.c: files from a directory (see eddy/http.h, "Static files").
 *
 * The path is decoded once (%XX; a NUL, an encoded slash or a bad escape
 * is refused), cut into segments ("." dropped, ".." taking one back and
 * never above the root), and opened beneath the root's descriptor with
 * openat2(RESOLVE_BENEATH), so that neither ".." nor a symbolic link can
 * lead out of the root; where openat2 is missing, the opened file's real
 * path is checked against the root's. Names starting with '.' are hidden.
 *
 * A file goes out with Last-Modified, an ETag (size and modification
 * time), Accept-Ranges; a conditional request that matches gets 304, a
 * single byte range 206 (or 416). Small files are read and sent with the
 * head in one write; larger ones go by sendfile, the descriptor handed to
 * the stream.
 *
 * Small files are kept in memory, in a cache of CACHE_SLOTS entries
 * indexed by a hash of the path. An entry found again in the loop's turn
 * that last checked it is used as it is (nothing on disk can have been
 * answered differently within one turn's requests); in a later turn it is
 * checked with one stat of its path: the same device, inode, size and
 * modification and change times, or it is dropped and the file opened
 * again. A stat that reaches another file (a link changed to lead out of
 * the root) cannot match, so the check needs no RESOLVE_BENEATH. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "eddy/http.h"
#include "proto/http/http.h"
#include "sys/alloc.h"

#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#define SMALL_FILE 16384
#define MAX_PATH 4096
#define CACHE_SLOTS 64 /* at most 1 MiB of small files */

/* What a file's answer says of it, worked out once per file seen. */
typedef struct meta {
  struct stat sb;
  const char *type; /* Content-Type */
  char etag[48];
  char modified[40]; /* Last-Modified */
} meta;

typedef struct cached {
  char *rel;  /* the cleaned path asked for; NULL: an empty slot */
  char *data; /* the file's bytes */
  meta m;
  uint64_t turn; /* the loop's turn that last checked it */
} cached;

typedef struct mime {
  char ext[16];
  char type[64];
} mime;

struct eddy_http_static {
  int root; /* O_PATH descriptor of the directory */
  char root_real[PATH_MAX];
  eddy_http_static_options o;
  char index[256];
  mime *types; /* from /etc/mime.types, after the built-in ones */
  size_t ntypes;
  cached cache[CACHE_SLOTS];
};

static const struct {
  const char *ext, *type;
} builtin[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"avif", "image/avif"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"csv", "text/csv; charset=utf-8"},
    {"c", "text/plain; charset=utf-8"},
    {"h", "text/plain; charset=utf-8"},
    {"scd", "text/plain; charset=utf-8"},
};

/* /etc/mime.types: "type ext ext ...", '#' comments. */
static void load_mime_types(eddy_http_static *st) {
  FILE *f = fopen("/etc/mime.types", "re");
  char line[512];
  size_t cap = 0;
  if (f == NULL)
    return;
  while (fgets(line, sizeof line, f)) {
    char *save = NULL, *type = strtok_r(line, " \t\r\n", &save), *ext;
    if (type == NULL || type[0] == '#' || strlen(type) >= sizeof(mime){0}.type)
      continue;
    while ((ext = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
      void *arr = st->types;
      if (strlen(ext) >= sizeof(mime){0}.ext)
        continue;
      if (eddy__grow(&arr, &cap, st->ntypes + 1, sizeof(mime)))
        break;
      st->types = arr;
      snprintf(st->types[st->ntypes].ext, sizeof st->types[0].ext, "%s", ext);
      snprintf(st->types[st->ntypes].type, sizeof st->types[0].type, "%s",
               type);
      st->ntypes++;
    }
  }
  fclose(f);
}

static const char *type_of(const eddy_http_static *st, const char *name) {
  const char *dot = strrchr(name, '.');
  char ext[16];
  size_t n;
  if (dot == NULL || strchr(dot, '/') || (n = strlen(dot + 1)) == 0 ||
      n >= sizeof ext)
    return "application/octet-stream";
  for (size_t i = 0; i <= n; i++)
    ext[i] = (char)(dot[1 + i] >= 'A' && dot[1 + i] <= 'Z' ? dot[1 + i] + 32
                                                           : dot[1 + i]);
  for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
    if (strcmp(builtin[i].ext, ext) == 0)
      return builtin[i].type;
  for (size_t i = 0; i < st->ntypes; i++)
    if (strcmp(st->types[i].ext, ext) == 0)
      return st->types[i].type;
  return "application/octet-stream";
}

/* ---- Paths ------------------------------------------------------------------ */

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c |= 0x20;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The request path (after the prefix), decoded and made relative to the
 * root in out: "a/b.html", or "" for the root itself. Returns 0, 400 for
 * a bad escape, a NUL or an encoded slash, 404 for a hidden name or a way
 * above the root. */
static int clean_path(const eddy_http_static *st, const char *p, size_t n,
                      char *out) {
  char dec[MAX_PATH];
  size_t d = 0, o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c == '%') {
      if (i + 2 >= n || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0)
        return 400;
      c = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
      i += 2;
      if (c == '\0' || c == '/' || c == '\\')
        return 400; /* a NUL, or a slash that would hide a segment */
    }
    if (d + 1 >= sizeof dec)
      return 414;
    dec[d++] = c;
  }
  dec[d] = '\0';
  /* Segments: "." dropped, ".." takes one back, never above the root. */
  for (size_t i = 0; i < d;) {
    size_t j = i, len;
    while (j < d && dec[j] != '/')
      j++;
    len = j - i;
    if (len == 0 || (len == 1 && dec[i] == '.')) {
      /* nothing */
    } else if (len == 2 && dec[i] == '.' && dec[i + 1] == '.') {
      if (o == 0)
        return 404;
      while (o > 0 && out[o - 1] != '/')
        o--;
      if (o > 0)
        o--;
    } else if (dec[i] == '.' && !st->o.dotfiles) {
      return 404;
    } else {
      if (o > 0)
        out[o++] = '/';
      memcpy(out + o, dec + i, len);
      o += len;
    }
    i = j + 1;
  }
  out[o] = '\0';
  return 0;
}

/* Opens rel (relative) beneath the root. Returns a descriptor or -errno. */
static int open_beneath(const eddy_http_static *st, const char *rel,
                        int flags) {
  const char *name = rel[0] ? rel : ".";
  int fd;
  if (st->o.follow_symlinks_out)
    return (fd = openat(st->root, name, flags | O_CLOEXEC)) < 0 ? -errno : fd;
#ifdef SYS_openat2
  {
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    fd = (int)syscall(SYS_openat2, st->root, name, &how, sizeof how);
    if (fd >= 0)
      return fd;
    if (errno != ENOSYS && errno != EPERM)
      return errno == EXDEV || errno == ELOOP ? -EACCES : -errno;
  }
#endif
  /* Without openat2: open, then check where it really is. */
  if ((fd = openat(st->root, name, flags | O_CLOEXEC)) < 0)
    return -errno;
  {
    char link[64], real[PATH_MAX];
    size_t rl = strlen(st->root_real);
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n < 0 || (size_t)n < rl || memcmp(real, st->root_real, rl) != 0 ||
        (real[rl] != '/' && (size_t)n != rl)) {
      close(fd);
      return -EACCES;
    }
  }
  return fd;
}

/* ---- Conditional requests and ranges --------------------------------------------- */

static void http_date(time_t t, char *out, size_t len) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static int header_is(const eddy_http_header *h, const char *s) {
  return h && h->value_len == strlen(s) &&
         memcmp(h->value, s, h->value_len) == 0;
}

/* If-None-Match: a list of entity tags, compared weakly, or "*". */
static int none_match(const eddy_http_header *h, const char *etag) {
  const char *tag = strchr(etag, '"'); /* the opaque part, W/ dropped */
  size_t tl = strlen(tag);
  for (size_t i = 0; i < h->value_len;) {
    size_t s, e;
    while (i < h->value_len && (h->value[i] == ' ' || h->value[i] == ','))
      i++;
    s = i;
    while (i < h->value_len && h->value[i] != ',')
      i++;
    e = i;
    while (e > s && h->value[e - 1] == ' ')
      e--;
    if (e - s == 1 && h->value[s] == '*')
      return 1;
    if (e - s >= 2 && h->value[s] == 'W' && h->value[s + 1] == '/')
      s += 2;
    if (e - s == tl && memcmp(h->value + s, tag, tl) == 0)
      return 1;
  }
  return 0;
}

/* If-Modified-Since in the IMF-fixdate form: 1 if not modified since. */
static int not_modified_since(const eddy_http_header *h, time_t mtime) {
  char text[64];
  struct tm tm;
  char *end;
  if (h->value_len >= sizeof text)
    return 0;
  memcpy(text, h->value, h->value_len);
  text[h->value_len] = '\0';
  memset(&tm, 0, sizeof tm);
  end = strptime(text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return end != NULL && *end == '\0' && mtime <= timegm(&tm);
}

/* A single byte range of a file of size bytes: 1 with *from, *len; 0 to
 * ignore the header (several ranges, another unit, a bad form); -1 if it
 * cannot be satisfied. */
static int byte_range(const eddy_http_header *h, off_t size, off_t *from,
                      off_t *len) {
  const char *p = h->value, *e = h->value + h->value_len;
  unsigned long long a = 0, b = 0;
  int has_a = 0, has_b = 0;
  if (h->value_len < 7 || memcmp(p, "bytes=", 6) != 0 ||
      memchr(p, ',', h->value_len))
    return 0;
  p += 6;
  while (p < e && *p >= '0' && *p <= '9' && a < (1ull << 60))
    a = a * 10 + (unsigned)(*p++ - '0'), has_a = 1;
  if (p == e || *p++ != '-')
    return 0;
  while (p < e && *p >= '0' && *p <= '9' && b < (1ull << 60))
    b = b * 10 + (unsigned)(*p++ - '0'), has_b = 1;
  if (p != e || (!has_a && !has_b))
    return 0;
  if (!has_a) { /* the last b bytes */
    if (b == 0 || size == 0)
      return -1;
    *from = b >= (unsigned long long)size ? 0 : size - (off_t)b;
    *len = size - *from;
    return 1;
  }
  if (has_b && b < a)
    return 0;
  if (a >= (unsigned long long)size)
    return -1;
  if (!has_b || b >= (unsigned long long)size)
    b = (unsigned long long)size - 1;
  *from = (off_t)a;
  *len = (off_t)(b - a + 1);
  return 1;
}

/* ---- Responses ---------------------------------------------------------------- */

static void meta_of(const eddy_http_static *st, const struct stat *sb,
                    const char *name, meta *m) {
  m->sb = *sb;
  m->type = type_of(st, name);
  snprintf(m->etag, sizeof m->etag, "W/\"%llx-%llx\"",
           (unsigned long long)sb->st_size,
           (unsigned long long)sb->st_mtim.tv_sec * 1000000000ull +
               (unsigned long long)sb->st_mtim.tv_nsec);
  http_date(sb->st_mtime, m->modified, sizeof m->modified);
}

/* Answers with the file: from memory (data, fd -1) or from fd (taken). */
static void send_file(eddy_http_exchange *x, int fd, const char *data,
                      const meta *m) {
  const struct stat *sb = &m->sb;
  const char *etag = m->etag, *modified = m->modified;
  const eddy_http_request *r = eddy_http_request_of(x);
  const eddy_http_header *inm = eddy_http_find_header(r, "If-None-Match");
  const eddy_http_header *ims = eddy_http_find_header(r, "If-Modified-Since");
  const eddy_http_header *range = eddy_http_find_header(r, "Range");
  const eddy_http_header *if_range = eddy_http_find_header(r, "If-Range");
  char cr[96];
  off_t from = 0, len = sb->st_size;
  int status = 200, rr = 0;
  (void)eddy_http_set_header(x, "Last-Modified", modified);
  (void)eddy_http_set_header(x, "ETag", etag);
  (void)eddy_http_set_header(x, "Accept-Ranges", "bytes");
  if ((inm && none_match(inm, etag)) ||
      (!inm && ims && not_modified_since(ims, sb->st_mtime))) {
    if (fd >= 0)
      close(fd);
    (void)eddy_http_respond(x, 304, NULL, NULL, 0);
    return;
  }
  if (range &&
      (!if_range || header_is(if_range, etag) || header_is(if_range, modified)))
    rr = byte_range(range, sb->st_size, &from, &len);
  if (rr < 0) {
    if (fd >= 0)
      close(fd);
    snprintf(cr, sizeof cr, "bytes */%lld", (long long)sb->st_size);
    (void)eddy_http_set_header(x, "Content-Range", cr);
    (void)eddy_http_respond(x, 416, "text/plain; charset=utf-8",
                            "416 Range Not Satisfiable\n", 26);
    return;
  }
  if (rr > 0) {
    status = 206;
    snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)from,
             (long long)(from + len - 1), (long long)sb->st_size);
    (void)eddy_http_set_header(x, "Content-Range", cr);
  }
  if (data) {
    (void)eddy_http_respond(x, status, m->type, data + from, (size_t)len);
    return;
  }
  if (len <= SMALL_FILE || r->method == EDDY_HTTP_HEAD) {
    char buf[SMALL_FILE];
    ssize_t n = len <= SMALL_FILE ? pread(fd, buf, (size_t)len, from) : 0;
    close(fd);
    if (n < 0 || (len <= SMALL_FILE && n != len)) {
      (void)eddy_http_respond(x, 500, NULL, NULL, 0);
      return;
    }
    if (r->method == EDDY_HTTP_HEAD && len > SMALL_FILE) {
      (void)eddy_http_respond_file(x, status, m->type, -1, 0, (size_t)len);
      return;
    }
    (void)eddy_http_respond(x, status, m->type, buf, (size_t)n);
    return;
  }
  (void)eddy_http_respond_file(x, status, m->type, fd, from, (size_t)len);
}

/* A growing text: raw markup, HTML-escaped text, or a URL path. */
typedef struct text {
  char *p;
  size_t len, cap;
  int err;
} text;

static void add(text *t, const char *s, size_t n) {
  if (t->err)
    return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->len + n + 1) * 2;
    char *p = eddy__realloc(t->p, cap);
    if (p == NULL) {
      t->err = -ENOMEM;
      return;
    }
    t->p = p;
    t->cap = cap;
  }
  memcpy(t->p + t->len, s, n);
  t->len += n;
}

static void add_raw(text *t, const char *s) {
  add(t, s, strlen(s));
}

static void add_html(text *t, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&':
      add_raw(t, "&amp;");
      break;
    case '<':
      add_raw(t, "&lt;");
      break;
    case '>':
      add_raw(t, "&gt;");
      break;
    case '"':
      add_raw(t, "&quot;");
      break;
    case '\'':
      add_raw(t, "&#39;");
      break;
    default:
      add(t, s, 1);
    }
  }
}

static void add_url(text *t, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || (c && strchr("-._~/", c))) {
      add(t, s, 1);
    } else {
      char esc[4];
      snprintf(esc, sizeof esc, "%%%02X", c);
      add(t, esc, 3);
    }
  }
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory's names, sorted, directories marked with '/'; hidden names
 * left out as the files are. */
static void listing(eddy_http_static *st, eddy_http_exchange *x, int dirfd,
                    const char *shown) {
  DIR *d = fdopendir(dirfd);
  struct dirent *e;
  char **names = NULL;
  size_t nn = 0, ncap = 0;
  text t = {0};
  if (d == NULL) {
    close(dirfd);
    (void)eddy_http_respond(x, 500, NULL, NULL, 0);
    return;
  }
  while (t.err == 0 && (e = readdir(d)) != NULL) {
    void *arr = names;
    size_t n = strlen(e->d_name);
    if (e->d_name[0] == '.' &&
        (!st->o.dotfiles || strcmp(e->d_name, ".") == 0 ||
         strcmp(e->d_name, "..") == 0))
      continue;
    if (eddy__grow(&arr, &ncap, nn + 1, sizeof *names) ||
        (((char **)arr)[nn] = eddy__malloc(n + 2)) == NULL) {
      names = arr;
      t.err = -ENOMEM;
      break;
    }
    names = arr;
    memcpy(names[nn], e->d_name, n + 1);
    if (e->d_type == DT_DIR)
      names[nn][n] = '/', names[nn][n + 1] = '\0';
    nn++;
  }
  closedir(d);
  if (t.err == 0)
    qsort(names, nn, sizeof *names, cmp_names);
  add_raw(&t, "<!DOCTYPE html>\n<meta charset=\"utf-8\">\n<title>Index of ");
  add_html(&t, shown);
  add_raw(&t, "</title>\n<h1>Index of ");
  add_html(&t, shown);
  add_raw(&t, "</h1>\n<ul>\n");
  if (strcmp(shown, "/") != 0)
    add_raw(&t, "<li><a href=\"../\">../</a></li>\n");
  for (size_t i = 0; i < nn; i++) {
    add_raw(&t, "<li><a href=\"");
    add_url(&t, names[i]);
    add_raw(&t, "\">");
    add_html(&t, names[i]);
    add_raw(&t, "</a></li>\n");
  }
  add_raw(&t, "</ul>\n");
  for (size_t i = 0; i < nn; i++)
    eddy__free(names[i]);
  eddy__free(names);
  if (t.err)
    (void)eddy_http_respond(x, 500, NULL, NULL, 0);
  else
    (void)eddy_http_respond(x, 200, "text/html; charset=utf-8", t.p, t.len);
  eddy__free(t.p);
}

/* ---- The cache of small files -------------------------------------------------- */

static cached *slot_of(eddy_http_static *st, const char *rel) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *p = rel; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  return &st->cache[h % CACHE_SLOTS];
}

static void cache_drop(cached *c) {
  eddy__free(c->rel);
  eddy__free(c->data);
  c->rel = c->data = NULL;
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size && a->st_mode == b->st_mode &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
         a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
         a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The entry for rel if it still holds the file's bytes, or NULL. */
static cached *cache_find(eddy_http_static *st, const char *rel,
                          uint64_t turn) {
  cached *c = slot_of(st, rel);
  struct stat sb;
  if (c->rel == NULL || strcmp(c->rel, rel) != 0)
    return NULL;
  if (c->turn == turn)
    return c;
  if (fstatat(st->root, rel[0] ? rel : ".", &sb, 0) != 0 ||
      !same_file(&sb, &c->m.sb)) {
    cache_drop(c);
    return NULL;
  }
  c->turn = turn;
  return c;
}

/* Reads the small regular file fd (as fstat saw it in sb) into rel's
 * slot. NULL if it cannot (no memory, a read error, a size that changed
 * under the read): the file is then sent from fd. */
static cached *cache_fill(eddy_http_static *st, const char *rel, int fd,
                          const struct stat *sb) {
  cached *c = slot_of(st, rel);
  size_t n = strlen(rel), size = (size_t)sb->st_size;
  char *data, *name;
  ssize_t got;
  if ((data = eddy__malloc(size ? size : 1)) == NULL)
    return NULL;
  if ((name = eddy__malloc(n + 1)) == NULL) {
    eddy__free(data);
    return NULL;
  }
  got = size ? pread(fd, data, size, 0) : 0;
  if (got != (ssize_t)size) {
    eddy__free(data);
    eddy__free(name);
    return NULL;
  }
  memcpy(name, rel, n + 1);
  cache_drop(c);
  c->rel = name;
  c->data = data;
  meta_of(st, sb, rel, &c->m);
  return c;
}

/* ---- The handler ---------------------------------------------------------------- */

static void serve(eddy_http_exchange *x, void *arg) {
  eddy_http_static *st = arg;
  const eddy_http_request *r = eddy_http_request_of(x);
  char rel[MAX_PATH];
  const char *p;
  size_t n;
  int dir = 0, rc, fd;
  struct stat sb;
  cached *c;
  if (r->method != EDDY_HTTP_GET && r->method != EDDY_HTTP_HEAD) {
    (void)eddy_http_set_header(x, "Allow", "GET, HEAD");
    (void)eddy_http_respond_status(x, 405);
    return;
  }
  if (eddy_http_param(x, "path", &p, &n) != 0)
    p = "", n = 0;
  if ((rc = clean_path(st, p, n, rel)) != 0) {
    (void)eddy_http_respond_status(x, rc);
    return;
  }
  /* Whether the request named a directory ("/docs/") is the request's own
   * path's business, not the parameter's ("/docs" has none). */
  dir = r->path_len > 0 && r->path[r->path_len - 1] == '/';
  if (!dir && (c = cache_find(st, rel, eddy_http_loop(x)->turns)) != NULL) {
    send_file(x, -1, c->data, &c->m);
    return;
  }
  fd = open_beneath(st, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    (void)eddy_http_respond_status(x,
                                   fd == -ENOENT || fd == -ENOTDIR ? 404 : 403);
    return;
  }
  if (fstat(fd, &sb) != 0) {
    close(fd);
    (void)eddy_http_respond_status(x, 500);
    return;
  }
  if (S_ISDIR(sb.st_mode)) {
    char path[MAX_PATH + 2];
    if (!dir) { /* "/docs" is "/docs/": say so, as every server does */
      snprintf(path, sizeof path, "%.*s/", (int)r->path_len, r->path);
      close(fd);
      (void)eddy_http_set_header(x, "Location", path);
      (void)eddy_http_respond_status(x, 301);
      return;
    }
    if (st->index[0]) {
      char idx[MAX_PATH + 260];
      int f;
      snprintf(idx, sizeof idx, "%s%s%s", rel, rel[0] ? "/" : "", st->index);
      f = open_beneath(st, idx, O_RDONLY | O_NOCTTY | O_NONBLOCK);
      if (f >= 0 && fstat(f, &sb) == 0 && S_ISREG(sb.st_mode)) {
        meta m;
        close(fd);
        meta_of(st, &sb, st->index, &m);
        send_file(x, f, NULL, &m);
        return;
      }
      if (f >= 0)
        close(f);
    }
    if (st->o.listing) {
      snprintf(rel, sizeof rel, "%.*s", (int)r->path_len, r->path);
      listing(st, x, fd, rel);
      return;
    }
    close(fd);
    (void)eddy_http_respond_status(x, 403);
    return;
  }
  if (!S_ISREG(sb.st_mode) || dir) {
    close(fd);
    (void)eddy_http_respond_status(x, 404);
    return;
  }
  if (sb.st_size <= SMALL_FILE && (c = cache_fill(st, rel, fd, &sb)) != NULL) {
    close(fd);
    c->turn = eddy_http_loop(x)->turns;
    send_file(x, -1, c->data, &c->m);
    return;
  }
  {
    meta m;
    meta_of(st, &sb, rel, &m);
    send_file(x, fd, NULL, &m);
  }
}

int eddy_http_static_new(const char *dir, const eddy_http_static_options *o,
                         eddy_http_static **out) {
  eddy_http_static *st = eddy__calloc(1, sizeof *st);
  if (st == NULL)
    return -ENOMEM;
  if (o)
    st->o = *o;
  snprintf(st->index, sizeof st->index, "%s",
           o && o->index ? o->index : "index.html");
  st->root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (st->root < 0 || realpath(dir, st->root_real) == NULL) {
    int e = -errno;
    if (st->root >= 0)
      close(st->root);
    eddy__free(st);
    return e;
  }
  load_mime_types(st);
  *out = st;
  return 0;
}

void eddy_http_static_free(eddy_http_static *st) {
  if (st == NULL)
    return;
  close(st->root);
  for (size_t i = 0; i < CACHE_SLOTS; i++)
    cache_drop(&st->cache[i]);
  eddy__free(st->types);
  eddy__free(st);
}

int eddy_http_static_route(eddy_http_server *srv, const char *prefix,
                           eddy_http_static *st) {
  char pattern[512];
  size_t n = strlen(prefix);
  if (n == 0 || prefix[0] != '/' || n + 8 > sizeof pattern)
    return -EINVAL;
  snprintf(pattern, sizeof pattern, "%s%s*path", prefix,
           prefix[n - 1] == '/' ? "" : "/");
  int e = eddy_http_route(srv, NULL, pattern, serve, st);
  if (e == 0 && n > 1 && prefix[n - 1] != '/') /* "/docs": redirected */
    e = eddy_http_route(srv, NULL, prefix, serve, st);
  return e;
}
