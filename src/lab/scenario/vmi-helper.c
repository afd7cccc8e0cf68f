/*
 * vmi-helper: the lab guest's scenario processes and its ground-truth dumper,
 * one static binary. The role comes from the name it was executed under
 * (/bin/vmi-* are symlinks to it), and the kernel takes the task's comm from
 * that name too, so every scenario process has a recognisable comm.
 *
 * Roles:
 *   vmi-user     drops to uid/gid 1000 and sleeps
 *   vmi-args     sleeps (started with a known argv and environment)
 *   vmi-files    holds /tmp/vmi-data.txt open on fd 7 and mapped, a log open on fd 8,
 *                and an anonymous read-write-execute mapping (a malfind positive)
 *   vmi-threads  main thread plus three named worker threads
 *   vmi-net      TCP 0.0.0.0:4444, TCP [::]:8080 (v6only), UDP 0.0.0.0:6000,
 *                UDP [::]:6001, raw ICMP, unix stream listener /tmp/vmi.sock;
 *                accepts one connection on each stream listener
 *   vmi-client   connects to 127.0.0.1:4444, [::1]:8080 and /tmp/vmi.sock
 *   vmi-ns       new UTS, IPC, mount and network namespaces, hostname vmi-container
 *   vmi-ksyms    prints the kallsyms digest and spot values (see role_ksyms)
 *   vmi-init     becomes PID 1's final image: prints the process part of the
 *                ground truth, VMI-GT-END and VMI-READY, then reaps children forever
 *   vmi-exec     the `lab exec` agent on /dev/ttyS1 (see role_exec)
 *
 * Run as vmi-helper ACTION ... it performs a scenario action for the host
 * (burst, escalate, listen, connect, execafter, now, bench, storm; see run_action).
 *
 * Every scenario role writes /run/vmi/<role>.ready once set up, so /init can
 * wait for a settled scenario before the ground truth is taken.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define UNIX_PATH "/tmp/vmi.sock"
#define DATA_PATH "/tmp/vmi-data.txt"
#define LOG_PATH "/tmp/vmi-files.log"
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static void die(const char *what) {
  fprintf(stderr, "vmi-helper: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void ready(const char *role) {
  char path[128];
  snprintf(path, sizeof path, "/run/vmi/%s.ready", role);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) close(fd);
}

static void sleep_forever(void) {
  for (;;) pause();
}

/* ---------- scenario roles ---------- */

static int role_user(void) {
  if (setgroups(0, NULL) != 0) die("setgroups");
  if (setgid(1000) != 0) die("setgid");
  if (setuid(1000) != 0) die("setuid");
  ready("vmi-user");
  sleep_forever();
  return 0;
}

static int role_files(void) {
  int fd = open(DATA_PATH, O_RDONLY);
  if (fd < 0) die("open " DATA_PATH);
  if (dup2(fd, 7) != 7) die("dup2 7");
  if (fd != 7) close(fd);
  int log = open(LOG_PATH, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (log < 0) die("open " LOG_PATH);
  if (dup2(log, 8) != 8) die("dup2 8");
  if (log != 8) close(log);
  if (write(8, "vmi-files started\n", 18) < 0) die("write log");
  struct stat st;
  if (fstat(7, &st) != 0) die("fstat");
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, 7, 0);
  if (map == MAP_FAILED) die("mmap data");
  unsigned char *rwx = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (rwx == MAP_FAILED) die("mmap rwx");
  /* A recognisable code-like payload: endbr64; nop x4; ret, then a marker. */
  static const unsigned char code[] = {0xf3, 0x0f, 0x1e, 0xfa, 0x90, 0x90, 0x90, 0x90, 0xc3};
  memcpy(rwx, code, sizeof code);
  memcpy(rwx + 64, "VMI-RWX-MARKER", 14);
  if (lseek(7, 4, SEEK_SET) != 4) die("lseek");
  ready("vmi-files");
  sleep_forever();
  return 0;
}

static void *worker(void *arg) {
  char name[16];
  snprintf(name, sizeof name, "vmi-worker-%ld", (long)(intptr_t)arg);
  prctl(PR_SET_NAME, name, 0, 0, 0);
  sleep_forever();
  return NULL;
}

static int role_threads(void) {
  for (long i = 1; i <= 3; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker, (void *)(intptr_t)i) != 0) die("pthread_create");
  }
  /* Let the workers rename themselves before we say we are ready. */
  struct timespec ts = {0, 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
  ready("vmi-threads");
  sleep_forever();
  return 0;
}

static int listen_inet(int type, int port) {
  int s = socket(AF_INET, type, 0);
  if (s < 0) die("socket inet");
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) die("bind inet");
  if (type == SOCK_STREAM && listen(s, 8) != 0) die("listen inet");
  return s;
}

static int listen_inet6(int type, int port) {
  int s = socket(AF_INET6, type, 0);
  if (s < 0) die("socket inet6");
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  struct sockaddr_in6 a = {0};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons((unsigned short)port);
  a.sin6_addr = in6addr_any;
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) die("bind inet6");
  if (type == SOCK_STREAM && listen(s, 8) != 0) die("listen inet6");
  return s;
}

static int role_net(void) {
  int tcp4 = listen_inet(SOCK_STREAM, 4444);
  int tcp6 = listen_inet6(SOCK_STREAM, 8080);
  (void)listen_inet(SOCK_DGRAM, 6000);
  (void)listen_inet6(SOCK_DGRAM, 6001);
  if (socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) < 0) die("socket raw");
  int ux = socket(AF_UNIX, SOCK_STREAM, 0);
  if (ux < 0) die("socket unix");
  struct sockaddr_un u = {0};
  u.sun_family = AF_UNIX;
  strcpy(u.sun_path, UNIX_PATH);
  unlink(UNIX_PATH);
  if (bind(ux, (struct sockaddr *)&u, sizeof u) != 0) die("bind unix");
  if (listen(ux, 8) != 0) die("listen unix");
  ready("vmi-net");
  /* One accepted connection per stream listener; the accepted sockets stay open. */
  if (accept(tcp4, NULL, NULL) < 0) die("accept tcp4");
  if (accept(tcp6, NULL, NULL) < 0) die("accept tcp6");
  if (accept(ux, NULL, NULL) < 0) die("accept unix");
  ready("vmi-net-accepted");
  sleep_forever();
  return 0;
}

static int role_client(void) {
  int s4 = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(4444);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s4 < 0 || connect(s4, (struct sockaddr *)&a, sizeof a) != 0) die("connect 127.0.0.1:4444");
  int s6 = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a6 = {0};
  a6.sin6_family = AF_INET6;
  a6.sin6_port = htons(8080);
  a6.sin6_addr = in6addr_loopback;
  if (s6 < 0 || connect(s6, (struct sockaddr *)&a6, sizeof a6) != 0) die("connect [::1]:8080");
  int ux = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un u = {0};
  u.sun_family = AF_UNIX;
  strcpy(u.sun_path, UNIX_PATH);
  if (ux < 0 || connect(ux, (struct sockaddr *)&u, sizeof u) != 0) die("connect " UNIX_PATH);
  ready("vmi-client");
  sleep_forever();
  return 0;
}

static int role_ns(void) {
  if (unshare(CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWNET) != 0) die("unshare");
  if (sethostname("vmi-container", 13) != 0) die("sethostname");
  ready("vmi-ns");
  sleep_forever();
  return 0;
}


/* ---------- kallsyms digest ---------- */

/* SHA-256 (FIPS 180-4), small and unhurried: it hashes a few MB once per boot. */
struct sha256 {
  uint32_t h[8];
  uint64_t len;
  unsigned char buf[64];
  size_t used;
};

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_init(struct sha256 *c) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, iv, sizeof iv);
  c->len = 0;
  c->used = 0;
}

static void sha256_block(struct sha256 *c, const unsigned char *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
    uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
    h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2;
  }
  c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d; c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void sha256_update(struct sha256 *c, const void *data, size_t n) {
  const unsigned char *p = data;
  c->len += n;
  while (n) {
    size_t take = 64 - c->used < n ? 64 - c->used : n;
    memcpy(c->buf + c->used, p, take);
    c->used += take;
    p += take;
    n -= take;
    if (c->used == 64) {
      sha256_block(c, c->buf);
      c->used = 0;
    }
  }
}

static void sha256_hex(struct sha256 *c, char out[65]) {
  uint64_t bits = c->len * 8;
  unsigned char pad = 0x80, zero = 0, lenbuf[8];
  sha256_update(c, &pad, 1);
  while (c->used != 56) sha256_update(c, &zero, 1);
  for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(c, lenbuf, 8);
  for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", c->h[i]);
  out[64] = '\0';
}

/*
 * vmi-ksyms <spot names...>: one pass over /proc/kallsyms. Prints the
 * kallsyms-digest section (count and sha256 of the lines without a [module]
 * tag, exactly as read, newline included; first and last such line), the
 * kallsyms-spots section (those lines whose name is one of the arguments) and
 * kallsyms-modules (the number of tagged lines). Busybox grep needs seconds
 * for this under TCG; this takes a fraction of one.
 */
static int role_ksyms(int argc, char **argv) {
  FILE *f = fopen("/proc/kallsyms", "r");
  if (!f) die("open /proc/kallsyms");
  static char line[1024], first[1024], last[1024];
  static char spots[256][1024];
  int nspots = 0;
  long count = 0, tagged = 0;
  struct sha256 c;
  sha256_init(&c);
  first[0] = last[0] = '\0';
  while (fgets(line, sizeof line, f)) {
    size_t n = strlen(line);
    if (strchr(line, '[')) {
      tagged++;
      continue;
    }
    sha256_update(&c, line, n);
    if (count++ == 0) memcpy(first, line, n + 1);
    memcpy(last, line, n + 1);
    /* "addr type name\n": compare the name with the spot list. */
    char *name = strchr(line, ' ');
    name = name ? strchr(name + 1, ' ') : NULL;
    if (!name) continue;
    name++;
    size_t nl = strcspn(name, "\n");
    for (int i = 1; i < argc && nspots < 256; i++) {
      if (strlen(argv[i]) == nl && memcmp(argv[i], name, nl) == 0) {
        memcpy(spots[nspots++], line, n + 1);
        break;
      }
    }
  }
  fclose(f);
  char hex[65];
  sha256_hex(&c, hex);
  printf("@@ kallsyms-digest\ncount %ld\nsha256 %s\nfirst %slast %s", count, hex, first, last);
  printf("@@ kallsyms-spots\n");
  for (int i = 0; i < nspots; i++) fputs(spots[i], stdout);
  printf("@@ kallsyms-modules\n%ld\n", tagged);
  fflush(stdout);
  return 0;
}

/* ---------- ground truth ---------- */

/* Prints a JSON string literal (bytes >= 0x80 are passed through; control bytes escaped). */
static void json_str(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20 || c == 0x7f) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static void json_cstr(const char *s) { json_str(s, strlen(s)); }

/* Reads a whole (small) file; returns its length or -1. */
static long slurp(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len < cap) {
    ssize_t r = read(fd, buf + len, cap - len);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  return (long)len;
}

/* Prints a NUL-separated buffer (cmdline, environ) as a JSON array. */
static void json_nul_array(const char *buf, long len) {
  putchar('[');
  long start = 0;
  int first = 1;
  for (long i = 0; i < len; i++) {
    if (buf[i] == '\0') {
      if (!first) putchar(',');
      json_str(buf + start, (size_t)(i - start));
      first = 0;
      start = i + 1;
    }
  }
  if (start < len) { /* unterminated tail */
    if (!first) putchar(',');
    json_str(buf + start, (size_t)(len - start));
  }
  putchar(']');
}

static void cat_file(const char *path) {
  static char buf[65536];
  int fd = open(path, O_RDONLY);
  if (fd < 0) return;
  fflush(stdout);
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) break;
    fwrite(buf, 1, (size_t)r, stdout);
  }
  close(fd);
}

static void section(const char *name) { printf("@@ %s\n", name); }

struct stat_fields {
  char state;
  long ppid, flags;
  unsigned long long starttime;
  char comm[64];
};

/* /proc/<pid>/stat: the comm may hold spaces and parentheses, so parse from the last ')'. */
static int read_stat(const char *path, struct stat_fields *out) {
  char buf[1024];
  long n = slurp(path, buf, sizeof buf - 1);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char *open_paren = strchr(buf, '(');
  char *close_paren = strrchr(buf, ')');
  if (!open_paren || !close_paren || close_paren < open_paren) return -1;
  size_t cl = (size_t)(close_paren - open_paren - 1);
  if (cl >= sizeof out->comm) cl = sizeof out->comm - 1;
  memcpy(out->comm, open_paren + 1, cl);
  out->comm[cl] = '\0';
  char *p = close_paren + 2;
  /* fields 3.. : state ppid pgrp session tty tpgid flags ... starttime(22) */
  char *save = NULL;
  int field = 3;
  for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
    if (field == 3) out->state = tok[0];
    else if (field == 4) out->ppid = strtol(tok, NULL, 10);
    else if (field == 9) out->flags = strtol(tok, NULL, 10);
    else if (field == 22) {
      out->starttime = strtoull(tok, NULL, 10);
      break;
    }
  }
  return 0;
}

/* Prints `"key":[a,b,c,d]` from a status line like "Uid:\t0\t0\t0\t0". */
static void status_ids(const char *status, const char *key, const char *json_key) {
  const char *p = strstr(status, key);
  printf(",\"%s\":[", json_key);
  if (p) {
    p += strlen(key);
    for (int i = 0; i < 4; i++) {
      char *end;
      long v = strtol(p, &end, 10);
      if (end == p) break;
      printf(i ? ",%ld" : "%ld", v);
      p = end;
    }
  }
  putchar(']');
}

static void status_str(const char *status, const char *key, const char *json_key) {
  const char *p = strstr(status, key);
  if (!p) return;
  p += strlen(key);
  while (*p == ' ' || *p == '\t') p++;
  const char *e = strchr(p, '\n');
  printf(",\"%s\":", json_key);
  json_str(p, e ? (size_t)(e - p) : strlen(p));
}

static int is_pid(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}

#define MAX_SCENARIO 64
static long scenario[MAX_SCENARIO];
static int n_scenario;

static void print_process(long pid) {
  char path[128], status[4096], buf[65536];
  struct stat_fields st = {0};
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if (read_stat(path, &st) != 0) return;
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  long sl = slurp(path, status, sizeof status - 1);
  if (sl < 0) return;
  status[sl] = '\0';
  printf("{\"pid\":%ld,\"ppid\":%ld,\"comm\":", pid, st.ppid);
  json_cstr(st.comm);
  printf(",\"state\":\"%c\",\"flags\":%ld,\"kthread\":%s,\"starttime\":%llu", st.state, st.flags,
         (st.flags & 0x00200000) ? "true" : "false", st.starttime);
  status_ids(status, "Uid:", "uid");
  status_ids(status, "Gid:", "gid");
  status_str(status, "CapInh:", "capInh");
  status_str(status, "CapPrm:", "capPrm");
  status_str(status, "CapEff:", "capEff");
  status_str(status, "CapBnd:", "capBnd");
  snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
  long cl = slurp(path, buf, sizeof buf);
  printf(",\"cmdline\":");
  json_nul_array(buf, cl < 0 ? 0 : cl);
  printf(",\"threads\":[");
  snprintf(path, sizeof path, "/proc/%ld/task", pid);
  DIR *d = opendir(path);
  int first = 1;
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!is_pid(e->d_name)) continue;
      char tpath[320];
      struct stat_fields ts = {0};
      snprintf(tpath, sizeof tpath, "/proc/%ld/task/%s/stat", pid, e->d_name);
      if (read_stat(tpath, &ts) != 0) continue;
      printf("%s{\"tid\":%s,\"comm\":", first ? "" : ",", e->d_name);
      json_cstr(ts.comm);
      printf(",\"state\":\"%c\"}", ts.state);
      first = 0;
    }
    closedir(d);
  }
  printf("]}\n");
  if (strncmp(st.comm, "vmi-", 4) == 0 && n_scenario < MAX_SCENARIO) scenario[n_scenario++] = pid;
}

static void print_fds(long pid) {
  char path[128], target[4096], info[1024];
  snprintf(path, sizeof path, "/proc/%ld/fd", pid);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!is_pid(e->d_name)) continue;
    char lpath[300];
    snprintf(lpath, sizeof lpath, "/proc/%ld/fd/%s", pid, e->d_name);
    ssize_t n = readlink(lpath, target, sizeof target);
    if (n < 0) continue;
    printf("{\"fd\":%s,\"target\":", e->d_name);
    json_str(target, (size_t)n);
    snprintf(lpath, sizeof lpath, "/proc/%ld/fdinfo/%s", pid, e->d_name);
    long il = slurp(lpath, info, sizeof info - 1);
    if (il > 0) {
      info[il] = '\0';
      char *p = strstr(info, "pos:");
      if (p) printf(",\"pos\":%lld", strtoll(p + 4, NULL, 10));
      p = strstr(info, "flags:");
      if (p) printf(",\"flags\":\"0%llo\"", strtoull(p + 6, NULL, 8));
    }
    printf("}\n");
  }
  closedir(d);
}

static void print_ns(long pid) {
  static const char *kinds[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"};
  char path[128], target[256];
  putchar('{');
  int first = 1;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    snprintf(path, sizeof path, "/proc/%ld/ns/%s", pid, kinds[i]);
    ssize_t n = readlink(path, target, sizeof target);
    if (n < 0) continue;
    printf("%s\"%s\":", first ? "" : ",", kinds[i]);
    json_str(target, (size_t)n);
    first = 0;
  }
  printf("}\n");
}

static void ground_truth(void) {
  long self = (long)getpid();
  char path[128], buf[65536];
  section("procs");
  DIR *d = opendir("/proc");
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (is_pid(e->d_name)) print_process(strtol(e->d_name, NULL, 10));
    closedir(d);
  }
  for (int i = 0; i < n_scenario; i++) {
    long pid = scenario[i];
    if (pid == self) continue;
    printf("@@ fds %ld\n", pid);
    print_fds(pid);
    printf("@@ environ %ld\n", pid);
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    long n = slurp(path, buf, sizeof buf);
    json_nul_array(buf, n < 0 ? 0 : n);
    putchar('\n');
    printf("@@ ns %ld\n", pid);
    print_ns(pid);
    printf("@@ maps %ld\n", pid);
    snprintf(path, sizeof path, "/proc/%ld/maps", pid);
    cat_file(path);
    printf("@@ cgroup %ld\n", pid);
    snprintf(path, sizeof path, "/proc/%ld/cgroup", pid);
    cat_file(path);
  }
  static const char *nets[] = {"tcp", "tcp6", "udp", "udp6", "raw", "raw6", "unix"};
  for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
    printf("@@ net/%s\n", nets[i]);
    snprintf(path, sizeof path, "/proc/net/%s", nets[i]);
    cat_file(path);
  }
  section("modules");
  cat_file("/proc/modules");
  section("mountinfo");
  cat_file("/proc/1/mountinfo");
  section("uptime");
  cat_file("/proc/uptime");
  fflush(stdout);
}

static int role_init(void) {
  ground_truth();
  char up[64] = "";
  long n = slurp("/proc/uptime", up, sizeof up - 1);
  if (n > 0) {
    up[n] = '\0';
    char *sp = strchr(up, ' ');
    if (sp) *sp = '\0';
  }
  printf("VMI-GT-END\nVMI-READY uptime=%s\n", up);
  fflush(stdout);
  /* PID 1 must never exit; reap whatever dies. */
  for (;;) {
    if (wait(NULL) < 0 && errno == ECHILD) pause();
  }
  return 0;
}

/* ---------- exec agent (vmi-exec) ---------- */

/*
 * vmi-exec <tty>: runs commands for the host (`vmsight lab exec`) over a
 * serial port of its own (/dev/ttyS1, a unix socket on the host), never the
 * console the ground truth is printed on. Raw mode: no echo, no flow control.
 *
 * Frame: 'V' 'X' type len(u32 LE) payload[len] crc32(u32 LE of type, len and
 * payload). Every payload starts with a u32 id (request id, or a nonce).
 *   host -> guest: A reset(nonce)  R request(id, flags, argv NUL-terminated...)
 *                  I stdin(id, bytes)  Z stdin end(id, total bytes u64: a loss is
 *                  reported and the command killed)  K kill(id, signal)
 *   guest -> host: a reset done(nonce)  S started(id, pid, stdin credit)
 *                  C credit(id, bytes)  O stdout  E stderr (id, bytes)
 *                  X exit(id, 0 = exit code | 1 = signal, value)
 *                  D detached(id, pid)  F failure(id or 0, text)
 * A bad frame (wrong magic, length or checksum) is reported with F id 0 and
 * skipped byte by byte until a frame parses again; a frame left incomplete for
 * a second is dropped the same way, so a torn frame can never wedge the agent.
 * stdin is credit-based: the host sends no more than the agent granted, so
 * the guest's tty buffers never overflow. One command runs at a time; a
 * request arriving meanwhile waits in a short queue.
 */
#define XF_MAX_PAYLOAD (128 * 1024)
#define XF_CHUNK (16 * 1024)
#define XF_CREDIT (64 * 1024)
#define XF_TX_HIGH (256 * 1024)
#define XF_QUEUE 8
#define XF_DETACH 1u

static uint32_t crc_table[256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put32(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }

struct buf {
  unsigned char *p;
  size_t off, len, cap; /* live bytes are p[off..len) */
};

static void buf_put(struct buf *b, const void *d, size_t n) {
  if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
  if (b->len + n > b->cap) {
    if (b->off > 0) {
      memmove(b->p, b->p + b->off, b->len - b->off);
      b->len -= b->off;
      b->off = 0;
    }
    if (b->len + n > b->cap) {
      size_t cap = b->cap ? b->cap : 65536;
      while (cap < b->len + n) cap *= 2;
      unsigned char *np = realloc(b->p, cap);
      if (!np) die("out of memory");
      b->p = np;
      b->cap = cap;
    }
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

static size_t buf_avail(const struct buf *b) { return b->len - b->off; }
static void buf_drop(struct buf *b, size_t n) { b->off += n; if (b->off >= b->len) b->off = b->len = 0; }

static int tty_fd = -1;
static struct buf txq, rxq;

static void send_frame(char type, uint32_t id, const void *data, size_t n) {
  unsigned char hdr[11];
  hdr[0] = 'V';
  hdr[1] = 'X';
  hdr[2] = (unsigned char)type;
  put32(hdr + 3, (uint32_t)(n + 4));
  put32(hdr + 7, id);
  uint32_t crc = crc_update(0xffffffffu, hdr + 2, 9);
  crc = ~crc_update(crc, data, n);
  unsigned char tail[4];
  put32(tail, crc);
  buf_put(&txq, hdr, sizeof hdr);
  if (n) buf_put(&txq, data, n);
  buf_put(&txq, tail, 4);
}

static void send_u32s(char type, uint32_t id, uint32_t a, uint32_t b, int count) {
  unsigned char d[8];
  put32(d, a);
  put32(d + 4, b);
  send_frame(type, id, d, (size_t)count * 4);
}

static void send_failure(uint32_t id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_failure(uint32_t id, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  send_frame('F', id, msg, (size_t)n);
}

struct run {
  int active;
  uint32_t id;
  pid_t pid;
  int pidfd, in_fd, out_fd, err_fd;
  struct buf in; /* stdin bytes received, not yet written to the command */
  int in_eof;
  uint64_t in_total; /* stdin bytes received, to check against the host's count */
  size_t consumed;   /* stdin bytes taken since the last credit */
};
static struct run cur = {.pidfd = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1};

struct pending {
  uint32_t id, flags;
  unsigned char *args;
  size_t len;
};
static struct pending queue[XF_QUEUE];
static int nqueue;
/* Killed commands a reset could not reap at once. */
static pid_t stale[XF_QUEUE];
static int nstale;

static void sleep_ms_agent(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void reap_stale(void) {
  for (int i = 0; i < nstale;)
    if (waitpid(stale[i], NULL, WNOHANG) != 0) stale[i] = stale[--nstale];
    else i++;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Splits NUL-terminated strings into a NULL-ended argv (pointing into args); NULL if malformed. */
static char **split_argv(unsigned char *args, size_t len) {
  if (len == 0 || args[len - 1] != '\0') return NULL;
  size_t argc = 0;
  for (size_t i = 0; i < len; i++) argc += args[i] == '\0';
  if (argc > 4096) return NULL;
  char **argv = calloc(argc + 1, sizeof *argv);
  if (!argv) return NULL;
  size_t k = 0, start = 0;
  for (size_t i = 0; i < len; i++)
    if (args[i] == '\0') {
      argv[k++] = (char *)args + start;
      start = i + 1;
    }
  if (argv[0][0] == '\0') {
    free(argv);
    return NULL;
  }
  return argv;
}

static void child_defaults(void) {
  signal(SIGPIPE, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Double fork: the command is re-parented to PID 1 (which reaps it), stdio goes to /tmp/vmi-exec/<pid>.log. */
static void start_detached(uint32_t id, char **argv) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    send_failure(id, "pipe: %s", strerror(errno));
    return;
  }
  pid_t mid = fork();
  if (mid < 0) {
    send_failure(id, "fork: %s", strerror(errno));
    close(p[0]);
    close(p[1]);
    return;
  }
  if (mid == 0) {
    setsid();
    pid_t pid = fork();
    if (pid == 0) {
      child_defaults();
      char log[64];
      mkdir("/tmp/vmi-exec", 0755);
      snprintf(log, sizeof log, "/tmp/vmi-exec/%ld.log", (long)getpid());
      int in = open("/dev/null", O_RDONLY);
      int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in >= 0) dup2(in, 0);
      if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
      }
      execvp(argv[0], argv);
      fprintf(stderr, "vmi-exec: %s: %s\n", argv[0], strerror(errno));
      _exit(127);
    }
    uint32_t v = pid > 0 ? (uint32_t)pid : 0;
    if (write(p[1], &v, 4) != 4) _exit(1);
    _exit(0);
  }
  close(p[1]);
  uint32_t pid = 0;
  ssize_t r = read(p[0], &pid, 4);
  close(p[0]);
  waitpid(mid, NULL, 0);
  if (r != 4 || pid == 0) send_failure(id, "fork: could not start %s", argv[0]);
  else send_u32s('D', id, pid, 0, 1);
}

static void start_request(uint32_t id, uint32_t flags, unsigned char *args, size_t len) {
  char **argv = split_argv(args, len);
  if (!argv) {
    send_failure(id, "malformed argv in request %u", id);
    return;
  }
  if (flags & XF_DETACH) {
    start_detached(id, argv);
    free(argv);
    return;
  }
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    send_failure(id, "pipe: %s", strerror(errno));
    free(argv);
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    send_failure(id, "fork: %s", strerror(errno));
    close(in[0]); close(in[1]); close(out[0]); close(out[1]); close(err[0]); close(err[1]);
    free(argv);
    return;
  }
  if (pid == 0) {
    setpgid(0, 0);
    child_defaults();
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execvp(argv[0], argv);
    fprintf(stderr, "vmi-exec: %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  free(argv);
  setpgid(pid, pid);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  cur.active = 1;
  cur.id = id;
  cur.pid = pid;
  cur.in_fd = in[1];
  cur.out_fd = out[0];
  cur.err_fd = err[0];
  set_nonblock(cur.in_fd);
  set_nonblock(cur.out_fd);
  set_nonblock(cur.err_fd);
  cur.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  cur.in.off = cur.in.len = 0;
  cur.in_eof = 0;
  cur.in_total = 0;
  cur.consumed = 0;
  send_u32s('S', id, (uint32_t)pid, XF_CREDIT, 2);
}

static void start_next(void) {
  while (!cur.active && nqueue > 0) {
    struct pending p = queue[0];
    memmove(queue, queue + 1, (size_t)(nqueue - 1) * sizeof queue[0]);
    nqueue--;
    start_request(p.id, p.flags, p.args, p.len);
    free(p.args);
  }
}

/* Forwards what a command's stdout or stderr holds; returns 0 at EOF or error. max bounds one call. */
static int pump_output(int fd, char type, size_t max) {
  static unsigned char chunk[XF_CHUNK];
  size_t total = 0;
  while (total < max) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r > 0) {
      send_frame(type, cur.id, chunk, (size_t)r);
      total += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return 1;
    return 0;
  }
  return 1;
}

/* The command exited (status from waitpid): forward what it left in its pipes and report. */
static void finish_run(int status) {
  /* A background grandchild may hold the pipes open and keep writing: take what is there, bounded. */
  if (cur.out_fd >= 0) pump_output(cur.out_fd, 'O', 4u << 20);
  if (cur.err_fd >= 0) pump_output(cur.err_fd, 'E', 4u << 20);
  close_fd(&cur.in_fd);
  close_fd(&cur.out_fd);
  close_fd(&cur.err_fd);
  close_fd(&cur.pidfd);
  if (WIFSIGNALED(status)) send_u32s('X', cur.id, 1, (uint32_t)WTERMSIG(status), 2);
  else send_u32s('X', cur.id, 0, (uint32_t)WEXITSTATUS(status), 2);
  cur.active = 0;
  start_next();
}

static void kill_run(int sig) {
  kill(-cur.pid, sig);
  kill(cur.pid, sig);
}

static void handle_frame(unsigned char type, unsigned char *p, size_t len) {
  if (len < 4) {
    send_failure(0, "frame '%c' too short (%zu bytes)", type, len);
    return;
  }
  uint32_t id = le32(p);
  p += 4;
  len -= 4;
  switch (type) {
  case 'A': /* reset: the host holding the lock starts afresh; anything running is stale */
    if (cur.active) {
      kill_run(SIGKILL);
      /* Reap it, but never wait long: a task stuck in the kernel is left for the main loop to reap. */
      int st, reaped = 0;
      for (int i = 0; i < 200 && !reaped; i++) {
        reaped = waitpid(cur.pid, &st, WNOHANG) == cur.pid;
        if (!reaped) sleep_ms_agent(10);
      }
      if (!reaped && nstale < XF_QUEUE) stale[nstale++] = cur.pid;
      close_fd(&cur.in_fd);
      close_fd(&cur.out_fd);
      close_fd(&cur.err_fd);
      close_fd(&cur.pidfd);
      cur.active = 0;
    }
    for (int i = 0; i < nqueue; i++) free(queue[i].args);
    nqueue = 0;
    send_frame('a', id, NULL, 0);
    break;
  case 'R': {
    if (len < 4) {
      send_failure(id, "request %u has no flags", id);
      break;
    }
    if (nqueue >= XF_QUEUE) {
      send_failure(id, "request %u refused: %d requests already wait", id, XF_QUEUE);
      break;
    }
    unsigned char *copy = malloc(len - 4 ? len - 4 : 1);
    if (!copy) die("out of memory");
    memcpy(copy, p + 4, len - 4);
    queue[nqueue++] = (struct pending){.id = id, .flags = le32(p), .args = copy, .len = len - 4};
    start_next();
    break;
  }
  case 'I':
    if (!cur.active || cur.id != id) break; /* stdin of a finished command: drop */
    cur.in_total += len;
    if (cur.in_fd >= 0) buf_put(&cur.in, p, len);
    else cur.consumed += len; /* the command closed its stdin: discard, but keep the credit flowing */
    break;
  case 'Z':
    if (!cur.active || cur.id != id || len < 8) break;
    cur.in_eof = 1;
    if (cur.in_total != ((uint64_t)le32(p + 4) << 32 | le32(p))) {
      send_failure(id, "stdin damaged in transit: %llu of %llu bytes arrived; command killed", (unsigned long long)cur.in_total,
                   (unsigned long long)((uint64_t)le32(p + 4) << 32 | le32(p)));
      kill_run(SIGKILL);
    }
    break;
  case 'K':
    if (len < 4) break;
    if (cur.active && cur.id == id) kill_run((int)le32(p));
    else
      for (int i = 0; i < nqueue; i++)
        if (queue[i].id == id) {
          free(queue[i].args);
          memmove(queue + i, queue + i + 1, (size_t)(nqueue - i - 1) * sizeof queue[0]);
          nqueue--;
          send_u32s('X', id, 1, le32(p), 2);
          break;
        }
    break;
  default:
    send_failure(0, "unknown frame type 0x%02x", type);
  }
}

/* Parses every complete frame in rxq; `stale` drops one byte of an incomplete head frame. */
static void parse_rx(int stale) {
  size_t skipped = 0;
  for (;;) {
    size_t avail = buf_avail(&rxq);
    unsigned char *p = rxq.p + rxq.off;
    if (avail == 0) break;
    if (p[0] != 'V' || (avail >= 2 && p[1] != 'X')) {
      buf_drop(&rxq, 1);
      skipped++;
      continue;
    }
    if (avail < 7) {
      if (stale) { buf_drop(&rxq, 1); skipped++; stale = 0; continue; }
      break;
    }
    uint32_t len = le32(p + 3);
    if (len > XF_MAX_PAYLOAD) {
      send_failure(0, "bad frame: length %u exceeds %u", len, XF_MAX_PAYLOAD);
      buf_drop(&rxq, 1);
      continue;
    }
    if (avail < 11 + (size_t)len) {
      if (stale) {
        send_failure(0, "bad frame: incomplete frame (%zu of %u bytes) dropped", avail, 11 + len);
        buf_drop(&rxq, 1);
        stale = 0;
        continue;
      }
      break;
    }
    uint32_t crc = ~crc_update(0xffffffffu, p + 2, 5 + (size_t)len);
    if (crc != le32(p + 7 + len)) {
      send_failure(0, "bad frame: checksum mismatch on a '%c' frame of %u bytes", p[2] >= 32 && p[2] < 127 ? p[2] : '?', len);
      buf_drop(&rxq, 1);
      continue;
    }
    handle_frame(p[2], p + 7, len);
    buf_drop(&rxq, 11 + (size_t)len);
  }
  if (skipped) send_failure(0, "bad frame: %zu stray bytes skipped", skipped);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int role_exec(int argc, char **argv) {
  const char *dev = argc > 1 ? argv[1] : "/dev/ttyS1";
  crc_init();
  signal(SIGPIPE, SIG_IGN);
  tty_fd = open(dev, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (tty_fd < 0) die("open exec tty");
  struct termios t;
  if (tcgetattr(tty_fd, &t) != 0) die("tcgetattr");
  cfmakeraw(&t);
  t.c_cflag |= CLOCAL | CREAD;
  t.c_cflag &= ~(CRTSCTS | HUPCL);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  /* QEMU does not pace the UART by baud rate, but the receive-FIFO timeout follows it: fastest standard rate. */
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  if (tcsetattr(tty_fd, TCSANOW, &t) != 0) die("tcsetattr");
  tcflush(tty_fd, TCIOFLUSH);
  /* An interrupt per 14 received bytes instead of 8: host-to-guest throughput is interrupt-bound. */
  const char *base = strrchr(dev, '/');
  char trig[96];
  snprintf(trig, sizeof trig, "/sys/class/tty/%s/rx_trig_bytes", base ? base + 1 : dev);
  int tf = open(trig, O_WRONLY);
  if (tf >= 0) {
    if (write(tf, "14", 2) < 0) { /* keep the default trigger */ }
    close(tf);
  }
  ready("vmi-exec");
  int64_t last_rx = mono_ms();
  static unsigned char rbuf[65536];
  for (;;) {
    struct pollfd fds[5];
    int n = 0, i_tty = -1, i_in = -1, i_out = -1, i_err = -1, i_pid = -1;
    fds[i_tty = n++] = (struct pollfd){.fd = tty_fd, .events = (short)(POLLIN | (buf_avail(&txq) ? POLLOUT : 0))};
    int room = buf_avail(&txq) < XF_TX_HIGH;
    if (cur.active) {
      if (cur.in_fd >= 0 && buf_avail(&cur.in)) fds[i_in = n++] = (struct pollfd){.fd = cur.in_fd, .events = POLLOUT};
      if (cur.out_fd >= 0 && room) fds[i_out = n++] = (struct pollfd){.fd = cur.out_fd, .events = POLLIN};
      if (cur.err_fd >= 0 && room) fds[i_err = n++] = (struct pollfd){.fd = cur.err_fd, .events = POLLIN};
      if (cur.pidfd >= 0) fds[i_pid = n++] = (struct pollfd){.fd = cur.pidfd, .events = POLLIN};
    }
    reap_stale();
    int timeout = nstale ? 1000 : -1;
    if (buf_avail(&rxq)) timeout = 1000;               /* an incomplete frame: see whether it goes stale */
    if (cur.active && cur.pidfd < 0) timeout = 20;      /* no pidfd (old kernel): poll for the exit */
    int r = poll(fds, (nfds_t)n, timeout);
    if (r < 0 && errno != EINTR) die("poll");
    if (r < 0) continue;
    if (fds[i_tty].revents & POLLIN) {
      ssize_t got = read(tty_fd, rbuf, sizeof rbuf);
      if (got > 0) {
        buf_put(&rxq, rbuf, (size_t)got);
        last_rx = mono_ms();
        parse_rx(0);
        /* Mid-way through a big frame, let the tty gather bytes rather than wake for every FIFO load. */
        if (got < 512 && buf_avail(&rxq) >= 11 && le32(rxq.p + rxq.off + 3) > 1024) {
          struct timespec nap = {0, 8 * 1000 * 1000};
          nanosleep(&nap, NULL);
        }
      }
    } else if (buf_avail(&rxq) && mono_ms() - last_rx >= 1000) {
      parse_rx(1);
      last_rx = mono_ms();
    }
    if (i_in >= 0 && (fds[i_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(cur.in_fd, cur.in.p + cur.in.off, buf_avail(&cur.in));
      if (w > 0) {
        buf_drop(&cur.in, (size_t)w);
        cur.consumed += (size_t)w;
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        /* The command closed its stdin (EPIPE): drop what is left but grant its credit back. */
        cur.consumed += buf_avail(&cur.in);
        buf_drop(&cur.in, buf_avail(&cur.in));
        close_fd(&cur.in_fd);
      }
    }
    if (cur.active) {
      if (cur.in_eof && cur.in_fd >= 0 && !buf_avail(&cur.in)) close_fd(&cur.in_fd);
      if (cur.consumed >= XF_CHUNK || (cur.consumed > 0 && !buf_avail(&cur.in))) {
        send_u32s('C', cur.id, (uint32_t)cur.consumed, 0, 1);
        cur.consumed = 0;
      }
      if (i_out >= 0 && (fds[i_out].revents & (POLLIN | POLLHUP | POLLERR)) && !pump_output(cur.out_fd, 'O', XF_CHUNK * 4)) close_fd(&cur.out_fd);
      if (i_err >= 0 && (fds[i_err].revents & (POLLIN | POLLHUP | POLLERR)) && !pump_output(cur.err_fd, 'E', XF_CHUNK * 4)) close_fd(&cur.err_fd);
      int st;
      if (waitpid(cur.pid, &st, WNOHANG) == cur.pid) finish_run(st);
    }
    if (buf_avail(&txq)) {
      ssize_t w = write(tty_fd, txq.p + txq.off, buf_avail(&txq));
      if (w > 0) buf_drop(&txq, (size_t)w);
    }
  }
  return 0;
}

/* ---------- scenario actions (vmi-helper ACTION ...) ---------- */

/*
 * Commands the host runs through `lab exec` while a monitor watches. Each
 * renames its comm to vmi-<action> and prints `t=<CLOCK_MONOTONIC ns>` at the
 * moment it acts, so a benchmark can compare with when the host saw it.
 */
static long long mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* A non-negative integer argument, or exit 2 with a usage line. */
static long arg_long(const char *s, const char *what, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 0 || v > max) {
    fprintf(stderr, "vmi-helper: %s '%s' must be an integer between 0 and %ld\n", what, s, max);
    exit(2);
  }
  return v;
}

static void usage_exit(const char *usage) {
  fprintf(stderr, "usage: vmi-helper %s\n", usage);
  exit(2);
}

static void set_comm(const char *action) {
  char comm[16];
  snprintf(comm, sizeof comm, "vmi-%s", action);
  prctl(PR_SET_NAME, comm, 0, 0, 0);
}

static int act_burst(int argc, char **argv) {
  if (argc != 4) usage_exit("burst N LIFETIME_MS");
  long n = arg_long(argv[2], "N", 4096), life = arg_long(argv[3], "LIFETIME_MS", 3600000);
  printf("burst pid=%ld n=%ld t=%lld\n", (long)getpid(), n, mono_ns());
  fflush(stdout);
  long started = 0;
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      fprintf(stderr, "vmi-helper: fork: %s\n", strerror(errno));
      break;
    }
    if (pid == 0) {
      printf("child pid=%ld t=%lld\n", (long)getpid(), mono_ns());
      fflush(stdout);
      sleep_ms(life);
      _exit(0);
    }
    started++;
  }
  while (wait(NULL) > 0 || errno == EINTR) {}
  printf("burst done children=%ld t=%lld\n", started, mono_ns());
  return started == n ? 0 : 1;
}

/*
 * storm WORKERS SECONDS: a fork bomb with an end. WORKERS processes each fork short-lived children
 * (they _exit at once) as fast as fork and wait allow, for SECONDS; then each worker reports how many it
 * made and the parent prints the total. Bounded on purpose: the guest must survive it, the monitor must
 * stay bounded under it.
 */
static int act_storm(int argc, char **argv) {
  if (argc != 4) usage_exit("storm WORKERS SECONDS");
  long workers = arg_long(argv[2], "WORKERS", 64), secs = arg_long(argv[3], "SECONDS", 600);
  printf("storm pid=%ld workers=%ld seconds=%ld t=%lld\n", (long)getpid(), workers, secs, mono_ns());
  long long deadline = mono_ns() + secs * 1000000000LL;
  int pipefd[2];
  if (pipe(pipefd) != 0) die("pipe");
  for (long w = 0; w < workers; w++) {
    pid_t pid = fork();
    if (pid < 0) die("fork worker");
    if (pid == 0) {
      close(pipefd[0]);
      long made = 0, failed = 0;
      while (mono_ns() < deadline) {
        pid_t c = fork();
        if (c == 0) _exit(0);
        if (c < 0) {
          failed++;
          continue;
        }
        made++;
        while (waitpid(c, NULL, 0) < 0 && errno == EINTR) {}
      }
      long rec[2] = {made, failed};
      if (write(pipefd[1], rec, sizeof rec) != (ssize_t)sizeof rec) _exit(1);
      _exit(0);
    }
  }
  close(pipefd[1]);
  long total = 0, failures = 0, rec[2];
  while (read(pipefd[0], rec, sizeof rec) == (ssize_t)sizeof rec) {
    total += rec[0];
    failures += rec[1];
  }
  while (wait(NULL) > 0 || errno == EINTR) {}
  printf("storm done workers=%ld children=%ld failed=%ld t=%lld\n", workers, total, failures, mono_ns());
  return 0;
}

static int act_escalate(int argc, char **argv) {
  if (argc != 3) usage_exit("escalate DELAY_MS");
  long delay = arg_long(argv[2], "DELAY_MS", 86400000);
  if (geteuid() != 0) {
    fprintf(stderr, "vmi-helper: escalate must start as root (to keep saved uid 0)\n");
    return 1;
  }
  if (setgroups(0, NULL) != 0 || setresgid(1000, 1000, 0) != 0 || setresuid(1000, 1000, 0) != 0) die("drop to uid 1000");
  printf("escalate pid=%ld uid=%d t=%lld\n", (long)getpid(), (int)getuid(), mono_ns());
  fflush(stdout);
  sleep_ms(delay);
  /* The saved uid 0 lets us take root back without exec: the credential change a monitor must flag. */
  if (setresuid(0, 0, 0) != 0 || setresgid(0, 0, 0) != 0) die("setresuid 0");
  printf("escalated pid=%ld uid=%d t=%lld\n", (long)getpid(), (int)getuid(), mono_ns());
  fflush(stdout);
  sleep_forever();
  return 0;
}

static int act_listen(int argc, char **argv) {
  if (argc != 4) usage_exit("listen PORT SECONDS");
  long port = arg_long(argv[2], "PORT", 65535), secs = arg_long(argv[3], "SECONDS", 86400);
  int s = listen_inet(SOCK_STREAM, (int)port);
  printf("listen pid=%ld port=%ld t=%lld\n", (long)getpid(), port, mono_ns());
  fflush(stdout);
  long long deadline = mono_ns() + secs * 1000000000LL;
  for (;;) {
    long long left = deadline - mono_ns();
    if (left <= 0) break;
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, (int)(left / 1000000 + 1)) > 0) {
      int c = accept(s, NULL, NULL); /* accepted connections stay open until we exit */
      if (c >= 0) {
        printf("accepted fd=%d t=%lld\n", c, mono_ns());
        fflush(stdout);
      }
    }
  }
  return 0;
}

static int act_connect(int argc, char **argv) {
  if (argc != 5) usage_exit("connect HOST PORT SECONDS");
  long port = arg_long(argv[3], "PORT", 65535), secs = arg_long(argv[4], "SECONDS", 86400);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) {
    fprintf(stderr, "vmi-helper: HOST '%s' must be an IPv4 address\n", argv[2]);
    return 2;
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) die("connect");
  struct sockaddr_in local;
  socklen_t ll = sizeof local;
  getsockname(s, (struct sockaddr *)&local, &ll);
  printf("connect pid=%ld lport=%d t=%lld\n", (long)getpid(), ntohs(local.sin_port), mono_ns());
  fflush(stdout);
  sleep_ms(secs * 1000);
  return 0;
}

static int act_execafter(int argc, char **argv) {
  if (argc < 4) usage_exit("execafter DELAY_MS PATH [ARG...]");
  long delay = arg_long(argv[2], "DELAY_MS", 86400000);
  printf("execafter pid=%ld t=%lld\n", (long)getpid(), mono_ns());
  fflush(stdout);
  sleep_ms(delay);
  printf("exec path=%s t=%lld\n", argv[3], mono_ns());
  fflush(stdout);
  execv(argv[3], argv + 3);
  die("execv");
  return 1;
}

/* ---------- in-guest benchmarks (vmi-helper bench KIND SECONDS) ---------- */

static double secs_since(long long t0) { return (double)(mono_ns() - t0) / 1e9; }

static void bench_line(const char *kind, double secs, unsigned long long ops, double rate, const char *unit) {
  printf("VMI-BENCH kind=%s seconds=%.3f ops=%llu rate=%.3f unit=%s\n", kind, secs, ops, rate, unit);
}

/* cpu: SHA-256 over a 64 KiB buffer (pure integer compute, cache-resident). */
static int bench_cpu(double limit) {
  static unsigned char block[65536];
  for (size_t i = 0; i < sizeof block; i++) block[i] = (unsigned char)(i * 131u);
  long long t0 = mono_ns();
  unsigned long long ops = 0;
  struct sha256 c;
  char hex[65];
  do {
    sha256_init(&c);
    sha256_update(&c, block, sizeof block);
    sha256_hex(&c, hex);
    block[0] = (unsigned char)hex[0];
    ops++;
  } while (secs_since(t0) < limit);
  double s = secs_since(t0);
  bench_line("cpu", s, ops, (double)ops * sizeof block / 1e6 / s, "MB/s");
  return 0;
}

/* mem: STREAM-style triad a = b + k*c over three 16 MiB arrays (far beyond any cache); 24 bytes move per element. */
static int bench_mem(double limit) {
  size_t n = 2u << 20;
  double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
  if (!a || !b || !c) die("malloc (mem bench needs 48 MiB)");
  for (size_t i = 0; i < n; i++) {
    a[i] = 0;
    b[i] = (double)i;
    c[i] = 1.5;
  }
  long long t0 = mono_ns();
  unsigned long long ops = 0;
  do {
    for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
    b[ops % n] = a[(ops * 7) % n];
    ops++;
  } while (secs_since(t0) < limit);
  double s = secs_since(t0);
  bench_line("mem", s, ops, (double)ops * (double)n * 24.0 / 1e6 / s, "MB/s");
  free(a);
  free(b);
  free(c);
  return 0;
}

/* fork: fork + exec of /bin/true + wait, as fast as it goes. */
static int bench_fork(double limit) {
  long long t0 = mono_ns();
  unsigned long long ops = 0;
  do {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      execl("/bin/true", "true", (char *)NULL);
      _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "vmi-helper: /bin/true failed\n");
      return 1;
    }
    ops++;
  } while (secs_since(t0) < limit);
  double s = secs_since(t0);
  bench_line("fork", s, ops, (double)ops / s, "forks/s");
  return 0;
}

static void *net_sink(void *arg) {
  int c = accept((int)(intptr_t)arg, NULL, NULL);
  if (c < 0) return NULL;
  static char buf[65536];
  while (read(c, buf, sizeof buf) > 0) {}
  close(c);
  return NULL;
}

/* net: one TCP stream over loopback, 64 KiB writes to a reading thread. */
static int bench_net(double limit) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &al) != 0) die("loopback listener");
  pthread_t t;
  if (pthread_create(&t, NULL, net_sink, (void *)(intptr_t)l) != 0) die("pthread_create");
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) die("connect loopback");
  static char buf[65536];
  memset(buf, 0x5a, sizeof buf);
  long long t0 = mono_ns();
  unsigned long long ops = 0, bytes = 0;
  do {
    ssize_t w = write(s, buf, sizeof buf);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write loopback");
    bytes += (unsigned long long)w;
    ops++;
  } while (secs_since(t0) < limit);
  double sec = secs_since(t0);
  close(s);
  pthread_join(t, NULL);
  close(l);
  bench_line("net", sec, ops, (double)bytes / 1e6 / sec, "MB/s");
  return 0;
}

/* file: write a 1 MiB file on tmpfs in 64 KiB chunks, read it back, unlink; MB/s counts both ways. */
static int bench_file(double limit) {
  static char buf[65536];
  memset(buf, 0xa5, sizeof buf);
  const char *path = "/tmp/vmi-bench.dat";
  long long t0 = mono_ns();
  unsigned long long ops = 0, bytes = 0;
  do {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("open /tmp/vmi-bench.dat");
    for (int i = 0; i < 16; i++)
      if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("write /tmp/vmi-bench.dat");
    if (lseek(fd, 0, SEEK_SET) != 0) die("lseek");
    for (int i = 0; i < 16; i++)
      if (read(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("read /tmp/vmi-bench.dat");
    close(fd);
    unlink(path);
    bytes += 2u * 16u * sizeof buf;
    ops++;
  } while (secs_since(t0) < limit);
  double s = secs_since(t0);
  bench_line("file", s, ops, (double)bytes / 1e6 / s, "MB/s");
  return 0;
}

static int act_bench(int argc, char **argv) {
  if (argc != 4) usage_exit("bench cpu|mem|fork|net|file SECONDS");
  char *end;
  double secs = strtod(argv[3], &end);
  if (end == argv[3] || *end || !(secs > 0 && secs <= 3600)) {
    fprintf(stderr, "vmi-helper: SECONDS '%s' must be a number in (0, 3600]\n", argv[3]);
    return 2;
  }
  const char *k = argv[2];
  if (strcmp(k, "cpu") == 0) return bench_cpu(secs);
  if (strcmp(k, "mem") == 0) return bench_mem(secs);
  if (strcmp(k, "fork") == 0) return bench_fork(secs);
  if (strcmp(k, "net") == 0) return bench_net(secs);
  if (strcmp(k, "file") == 0) return bench_file(secs);
  fprintf(stderr, "vmi-helper: unknown bench kind '%s' (cpu, mem, fork, net, file)\n", k);
  return 2;
}

static int run_action(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } actions[] = {{"burst", act_burst}, {"escalate", act_escalate}, {"listen", act_listen}, {"connect", act_connect},
                 {"execafter", act_execafter}, {"bench", act_bench}, {"storm", act_storm}};
  if (argc < 2) usage_exit("burst|escalate|listen|connect|execafter|now|bench|storm ...");
  if (strcmp(argv[1], "now") == 0) {
    printf("t=%lld\n", mono_ns());
    return 0;
  }
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
    if (strcmp(argv[1], actions[i].name) == 0) {
      set_comm(actions[i].name);
      setvbuf(stdout, NULL, _IOLBF, 0);
      return actions[i].fn(argc, argv);
    }
  fprintf(stderr, "vmi-helper: unknown action '%s'\n", argv[1]);
  return 2;
}

int main(int argc, char **argv) {
  const char *name = strrchr(argv[0], '/');
  name = name ? name + 1 : argv[0];
  if (strcmp(name, "vmi-user") == 0) return role_user();
  if (strcmp(name, "vmi-args") == 0) {
    ready("vmi-args");
    sleep_forever();
  }
  if (strcmp(name, "vmi-files") == 0) return role_files();
  if (strcmp(name, "vmi-threads") == 0) return role_threads();
  if (strcmp(name, "vmi-net") == 0) return role_net();
  if (strcmp(name, "vmi-client") == 0) return role_client();
  if (strcmp(name, "vmi-ns") == 0) return role_ns();
  if (strcmp(name, "vmi-init") == 0) return role_init();
  if (strcmp(name, "vmi-ksyms") == 0) return role_ksyms(argc, argv);
  if (strcmp(name, "vmi-exec") == 0) return role_exec(argc, argv);
  if (strcmp(name, "vmi-helper") == 0) return run_action(argc, argv);
  fprintf(stderr, "vmi-helper: unknown role '%s'\n", name);
  return 2;
}
