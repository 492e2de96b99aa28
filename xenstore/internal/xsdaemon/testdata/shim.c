/*
 * LD_PRELOAD shim that lets Debian's xenstored (C) and oxenstored (OCaml)
 * run without a hypervisor, for the xenckpt conformance tests and
 * benchmarks. Written for this project from the public Xen 4.17 headers;
 * see /work/shared/XENSTORED.md section 3 for why each symbol is here.
 *
 * Build: gcc -O2 -Wall -shared -fPIC -o shim.so shim.c -ldl
 *
 * Every domain id below DOMID_FIRST_RESERVED exists and runs; grant maps
 * and foreign maps return fresh zeroed pages; event channels are eventfds
 * that never fire; /proc/xen/xsd_port and xsd_kva are memfds.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>

#define PAGE 4096

static int dummy_handle;

xc_interface *xc_interface_open(xentoollog_logger *logger,
                                xentoollog_logger *dombuild_logger,
                                unsigned open_flags)
{
    (void)logger; (void)dombuild_logger; (void)open_flags;
    return (xc_interface *)&dummy_handle;
}

int xc_interface_close(xc_interface *xch)
{
    (void)xch;
    return 0;
}

int xc_domain_getinfo(xc_interface *xch, uint32_t first_domid,
                      unsigned int max_doms, xc_dominfo_t *info)
{
    (void)xch;
    if (max_doms == 0 || first_domid >= DOMID_FIRST_RESERVED)
        return 0;
    memset(info, 0, sizeof(*info));
    info->domid = first_domid;
    info->running = 1;
    return 1;
}

int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain,
                          unsigned int max_domains, xc_domaininfo_t *info)
{
    (void)xch;
    if (max_domains == 0 || first_domain >= DOMID_FIRST_RESERVED)
        return 0;
    memset(info, 0, sizeof(*info));
    info->domain = first_domain;
    info->flags = XEN_DOMINF_running;
    return 1;
}

static void *zero_page(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *xc_map_foreign_range(xc_interface *xch, uint32_t dom, int size,
                           int prot, unsigned long mfn)
{
    (void)xch; (void)dom; (void)prot; (void)mfn;
    return zero_page(size > 0 ? (size_t)size : PAGE);
}

xengnttab_handle *xengnttab_open(xentoollog_logger *logger, unsigned open_flags)
{
    (void)logger; (void)open_flags;
    return (xengnttab_handle *)&dummy_handle;
}

int xengnttab_close(xengnttab_handle *xgt)
{
    (void)xgt;
    return 0;
}

int xengnttab_set_max_grants(xengnttab_handle *xgt, uint32_t nr_grants)
{
    (void)xgt; (void)nr_grants;
    return 0;
}

void *xengnttab_map_grant_ref(xengnttab_handle *xgt, uint32_t domid,
                              uint32_t ref, int prot)
{
    (void)xgt; (void)domid; (void)ref; (void)prot;
    return zero_page(PAGE);
}

int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count)
{
    (void)xgt;
    return munmap(start_address, (size_t)count * PAGE);
}

/* An event-channel handle is an eventfd nobody ever signals. */
struct shim_evtchn {
    int fd;
};

static evtchn_port_t next_port = 1;

static xenevtchn_handle *new_evtchn(int fd)
{
    struct shim_evtchn *h;
    if (fd < 0)
        return NULL;
    h = calloc(1, sizeof(*h));
    if (!h) {
        close(fd);
        return NULL;
    }
    h->fd = fd;
    return (xenevtchn_handle *)h;
}

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *logger,
                                 unsigned open_flags)
{
    (void)logger; (void)open_flags;
    return new_evtchn(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

xenevtchn_handle *xenevtchn_fdopen(struct xentoollog_logger *logger,
                                   int fd, unsigned open_flags)
{
    (void)logger; (void)open_flags;
    return new_evtchn(fd);
}

int xenevtchn_close(xenevtchn_handle *xce)
{
    struct shim_evtchn *h = (struct shim_evtchn *)xce;
    if (!h)
        return 0;
    close(h->fd);
    free(h);
    return 0;
}

int xenevtchn_fd(xenevtchn_handle *xce)
{
    return ((struct shim_evtchn *)xce)->fd;
}

int xenevtchn_notify(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce; (void)port;
    return 0;
}

xenevtchn_port_or_error_t xenevtchn_bind_unbound_port(xenevtchn_handle *xce,
                                                      uint32_t domid)
{
    (void)xce; (void)domid;
    return next_port++;
}

xenevtchn_port_or_error_t xenevtchn_bind_interdomain(xenevtchn_handle *xce,
                                                     uint32_t domid,
                                                     evtchn_port_t remote_port)
{
    (void)xce; (void)domid; (void)remote_port;
    return next_port++;
}

xenevtchn_port_or_error_t xenevtchn_bind_virq(xenevtchn_handle *xce,
                                              unsigned int virq)
{
    (void)xce; (void)virq;
    return next_port++;
}

int xenevtchn_unbind(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce; (void)port;
    return 0;
}

xenevtchn_port_or_error_t xenevtchn_pending(xenevtchn_handle *xce)
{
    (void)xce;
    errno = EAGAIN;
    return -1;
}

int xenevtchn_unmask(xenevtchn_handle *xce, evtchn_port_t port)
{
    (void)xce; (void)port;
    return 0;
}

/* /proc/xen/xsd_port holds "1" (no newline: oxenstored uses int_of_string);
 * /proc/xen/xsd_kva is the dom0 ring page, which stays empty. */
static int fake_proc(const char *path)
{
    int fd;
    if (strcmp(path, "/proc/xen/xsd_port") == 0) {
        fd = memfd_create("xsd_port", MFD_CLOEXEC);
        if (fd >= 0 && (write(fd, "1", 1) != 1 || lseek(fd, 0, SEEK_SET) != 0)) {
            close(fd);
            return -1;
        }
        return fd;
    }
    if (strcmp(path, "/proc/xen/xsd_kva") == 0) {
        fd = memfd_create("xsd_kva", MFD_CLOEXEC);
        if (fd >= 0 && ftruncate(fd, PAGE) != 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    return -2;
}

typedef int (*open_fn)(const char *, int, ...);

static int do_open(const char *sym, const char *path, int flags, mode_t mode)
{
    static open_fn real_open, real_open64;
    open_fn *slot = strcmp(sym, "open") == 0 ? &real_open : &real_open64;
    int fd = fake_proc(path);
    if (fd != -2)
        return fd;
    if (!*slot)
        *slot = (open_fn)dlsym(RTLD_NEXT, sym);
    return (*slot)(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return do_open("open", path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return do_open("open64", path, flags, mode);
}

/* oxenstored raises RLIMIT_NOFILE to fs.nr_open; without CAP_SYS_RESOURCE
 * that fails, so retry clamped to the hard limit. */
int setrlimit(__rlimit_resource_t resource, const struct rlimit *rlim)
{
    static int (*real)(__rlimit_resource_t, const struct rlimit *);
    struct rlimit cur, clamped;
    int r;
    if (!real)
        real = (int (*)(__rlimit_resource_t, const struct rlimit *))dlsym(RTLD_NEXT, "setrlimit");
    r = real(resource, rlim);
    if (r == 0 || errno != EPERM || resource != RLIMIT_NOFILE)
        return r;
    if (getrlimit(RLIMIT_NOFILE, &cur) != 0)
        return r;
    clamped = *rlim;
    if (clamped.rlim_max > cur.rlim_max)
        clamped.rlim_max = cur.rlim_max;
    if (clamped.rlim_cur > clamped.rlim_max)
        clamped.rlim_cur = clamped.rlim_max;
    return real(resource, &clamped);
}
