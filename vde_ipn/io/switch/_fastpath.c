/*
 * The switch's flow cache: known unicast forwarded without the interpreter.
 *
 * The Python engine stays the authority.  After it has routed a frame
 * (untagged unicast from a MAC learned on its ingress port to a MAC
 * learned on exactly one other port) it may install a flow: (ingress
 * descriptor, destination MAC, source MAC) -> egress descriptor.  poll()
 * then waits on the event loop's epoll descriptor itself; a readable
 * ingress socket is read here, and a frame matching a flow is sent on at
 * once.  Anything else (no flow, broadcast or multicast, tagged, runt or
 * oversize, a receiver with a backlog, a send that would block or fails)
 * is kept aside for that
 * descriptor ("stashed") and its event is handed to Python, whose reader
 * takes the stashed frame first: nothing is lost or reordered.  Events of
 * descriptors not attached here are handed to Python untouched.
 *
 * Python forgets every flow (clear) whenever anything they were derived
 * from changes: the MAC table, VLANs, ports, the spanning tree, an
 * observer, a receiver's backlog.  Counters of forwarded frames are kept
 * per port and MAC refreshes per flow, and handed over by harvest().
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#define ETH_HLEN 14
#define KEYLEN 12                       /* destination MAC, source MAC */
#define MIN_SLOTS 256
#define MAX_SLOTS (1 << 16)
#define MAX_PROBES 32                   /* a longer search is a miss: bounded cost */

typedef struct {
    int in_fd;                          /* -1: empty slot */
    int out_fd;
    int in_port;
    int out_port;
    int hit;                            /* hit since the last harvest */
    double last;                        /* monotonic time of the last hit */
    unsigned char key[KEYLEN];
} Flow;

typedef struct {
    unsigned long long in_pkts, in_bytes, out_pkts, out_bytes;
    int dirty;
} PortCount;

typedef struct {
    PyObject_HEAD
    int epfd;
    Py_ssize_t bufsize;                 /* max_frame + 1: oversize shows */
    Py_ssize_t max_frame;
    unsigned char *buf;
    int budget;                         /* frames per ready socket per event */
    int nfds;                           /* size of ingress[], blocked[] and stash[] */
    unsigned char *ingress;
    unsigned char *blocked;             /* per fd: a receiver with a backlog */
    unsigned *inflows;                  /* per fd: flows it is the ingress of */
    PyObject **stash;
    Flow *flows;
    unsigned nslots, nflows;
    PortCount *counts;
    int nports;
    int *dirty;                         /* ports with counts to hand over */
    int ndirty;
    struct epoll_event *events;
    int maxevents;
    unsigned long long hits, punts, clears;
    uint32_t seed;                      /* random: clients cannot aim at one slot */
} FastPath;

static double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned
flow_hash(uint32_t seed, int fd, const unsigned char *key)
{
    uint32_t h = (2166136261u ^ seed) * 16777619u ^ (uint32_t)fd;
    for (int i = 0; i < KEYLEN; i++)
        h = (h ^ key[i]) * 16777619u;
    return h ^ (h >> 15);
}

static Flow *
flow_find(FastPath *self, int fd, const unsigned char *key)
{
    unsigned mask = self->nslots - 1;
    unsigned i = flow_hash(self->seed, fd, key) & mask;
    for (int probes = 0; probes < MAX_PROBES; probes++, i = (i + 1) & mask) {
        Flow *f = &self->flows[i];
        if (f->in_fd == -1)
            return NULL;
        if (f->in_fd == fd && memcmp(f->key, key, KEYLEN) == 0)
            return f;
    }
    return NULL;
}

static void
flows_clear(FastPath *self)
{
    for (unsigned i = 0; i < self->nslots; i++)
        self->flows[i].in_fd = -1;
    if (self->inflows != NULL)
        memset(self->inflows, 0, self->nfds * sizeof *self->inflows);
    self->nflows = 0;
    self->clears++;
}

/* Twice the slots, the flows kept (those too far from their new slot
 * are dropped: a cache may forget). */
static int
flows_grow(FastPath *self)
{
    unsigned old_slots = self->nslots, n = 2 * old_slots;
    Flow *old = self->flows, *flows = PyMem_Malloc(n * sizeof(Flow));
    if (flows == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (unsigned i = 0; i < n; i++)
        flows[i].in_fd = -1;
    self->flows = flows;
    self->nslots = n;
    self->nflows = 0;
    if (self->inflows != NULL)
        memset(self->inflows, 0, self->nfds * sizeof *self->inflows);
    for (unsigned k = 0; k < old_slots; k++) {
        Flow *f = &old[k];
        if (f->in_fd == -1)
            continue;
        unsigned i = flow_hash(self->seed, f->in_fd, f->key) & (n - 1);
        for (int probes = 0; probes < MAX_PROBES; probes++, i = (i + 1) & (n - 1)) {
            if (flows[i].in_fd == -1) {
                flows[i] = *f;
                self->nflows++;
                self->inflows[f->in_fd]++;
                break;
            }
        }
    }
    PyMem_Free(old);
    return 0;
}

static int
count_port(FastPath *self, int port)
{
    if (port < 0) {
        PyErr_SetString(PyExc_ValueError, "negative port");
        return -1;
    }
    if (port >= self->nports) {
        int n = self->nports ? self->nports : 64;
        while (n <= port)
            n *= 2;
        PortCount *c = PyMem_Realloc(self->counts, n * sizeof(PortCount));
        if (c == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memset(c + self->nports, 0, (n - self->nports) * sizeof(PortCount));
        int *d = PyMem_Realloc(self->dirty, n * sizeof(int));
        if (d == NULL) {
            self->counts = c;   /* keep what was grown */
            PyErr_NoMemory();
            return -1;
        }
        self->counts = c;
        self->dirty = d;
        self->nports = n;
    }
    return 0;
}

static inline void
counted(FastPath *self, int port, int in, Py_ssize_t n)
{
    PortCount *c = &self->counts[port];
    if (in) {
        c->in_pkts++;
        c->in_bytes += n;
    } else {
        c->out_pkts++;
        c->out_bytes += n;
    }
    if (!c->dirty) {
        c->dirty = 1;
        self->dirty[self->ndirty++] = port;
    }
}

/* Forward what waits on ingress ``fd``: 1 when the socket is empty (or the
 * budget is spent), 0 when Python must take over (a frame is stashed or
 * the read failed), -1 on a Python error. */
static int
forward(FastPath *self, int fd, double now)
{
    unsigned char *buf = self->buf;
    for (int k = 0; k < self->budget; k++) {
        ssize_t n = recv(fd, buf, self->bufsize, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            if (errno == EINTR)
                continue;
            return 0;                   /* the reader sees the error itself */
        }
        Flow *f = NULL;
        if (n >= ETH_HLEN && n <= self->max_frame && !(buf[0] & 1) && !(buf[6] & 1)
                && buf[12] != 0x81 && self->nflows)
            f = flow_find(self, fd, buf);
        if (f != NULL && !self->blocked[f->out_fd]) {
            if (send(f->out_fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) == n) {
                f->hit = 1;
                f->last = now;
                counted(self, f->in_port, 1, n);
                counted(self, f->out_port, 0, n);
                self->hits++;
                continue;
            }
            /* full or broken: Python's sender queues or counts it; once
             * it queues, it blocks the descriptor here until drained */
        }
        self->stash[fd] = PyBytes_FromStringAndSize((const char *)buf, n);
        if (self->stash[fd] == NULL)
            return -1;
        self->punts++;
        return 0;
    }
    return 1;
}

static int
as_fd(PyObject *arg, int *fd)
{
    long v = PyLong_AsLong(arg);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "not a file descriptor");
        return -1;
    }
    *fd = (int)v;
    return 0;
}

static int
ensure_fd(FastPath *self, int fd)
{
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "negative file descriptor");
        return -1;
    }
    if (fd < self->nfds)
        return 0;
    int n = self->nfds ? self->nfds : 64;
    while (n <= fd)
        n *= 2;
    unsigned char *in = PyMem_Realloc(self->ingress, n);
    if (in == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->ingress = in;
    memset(in + self->nfds, 0, n - self->nfds);
    unsigned char *bl = PyMem_Realloc(self->blocked, n);
    if (bl == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->blocked = bl;
    memset(bl + self->nfds, 0, n - self->nfds);
    unsigned *fl = PyMem_Realloc(self->inflows, n * sizeof *fl);
    if (fl == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->inflows = fl;
    memset(fl + self->nfds, 0, (n - self->nfds) * sizeof *fl);
    PyObject **st = PyMem_Realloc(self->stash, n * sizeof(PyObject *));
    if (st == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->stash = st;
    memset(st + self->nfds, 0, (n - self->nfds) * sizeof(PyObject *));
    self->nfds = n;
    return 0;
}

static int
fp_init(FastPath *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"epfd", "max_frame", "budget", NULL};
    int epfd, budget = 16;
    Py_ssize_t max_frame;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "in|i", names, &epfd, &max_frame, &budget))
        return -1;
    if (max_frame < ETH_HLEN || budget < 1) {
        PyErr_SetString(PyExc_ValueError, "max_frame below a header, or budget below 1");
        return -1;
    }
    self->epfd = epfd;
    self->max_frame = max_frame;
    self->bufsize = max_frame + 1;
    self->budget = budget;
    PyMem_Free(self->buf);
    self->buf = PyMem_Malloc(self->bufsize);
    PyMem_Free(self->flows);
    self->nslots = MIN_SLOTS;
    self->flows = PyMem_Malloc(self->nslots * sizeof(Flow));
    if (self->buf == NULL || self->flows == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (getrandom(&self->seed, sizeof self->seed, GRND_NONBLOCK) != sizeof self->seed)
        self->seed = (uint32_t)(uintptr_t)self ^ (uint32_t)(monotonic() * 1e9);
    flows_clear(self);
    self->clears = 0;
    return 0;
}

static void
fp_dealloc(FastPath *self)
{
    for (int i = 0; i < self->nfds; i++)
        Py_CLEAR(self->stash[i]);
    PyMem_Free(self->stash);
    PyMem_Free(self->ingress);
    PyMem_Free(self->blocked);
    PyMem_Free(self->inflows);
    PyMem_Free(self->buf);
    PyMem_Free(self->flows);
    PyMem_Free(self->counts);
    PyMem_Free(self->dirty);
    PyMem_Free(self->events);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
fp_attach(FastPath *self, PyObject *arg)
{
    int fd;
    if (as_fd(arg, &fd) < 0)
        return NULL;
    if (ensure_fd(self, fd) < 0)
        return NULL;
    self->ingress[fd] = 1;
    Py_RETURN_NONE;
}

static PyObject *
fp_attach_off(FastPath *self, PyObject *arg)
{
    /* stop reading fd here; a frame kept aside for it stays until taken */
    int fd;
    if (as_fd(arg, &fd) < 0)
        return NULL;
    if (fd < self->nfds)
        self->ingress[fd] = 0;
    Py_RETURN_NONE;
}

static PyObject *
fp_detach(FastPath *self, PyObject *arg)
{
    /* before the descriptor is closed: no flow may name it afterwards */
    int fd;
    if (as_fd(arg, &fd) < 0)
        return NULL;
    if (fd >= 0 && fd < self->nfds) {
        self->ingress[fd] = 0;
        self->blocked[fd] = 0;
        Py_CLEAR(self->stash[fd]);
    }
    if (self->nflows)
        flows_clear(self);
    Py_RETURN_NONE;
}

static PyObject *
fp_block(FastPath *self, PyObject *args)
{
    /* block(fd, on): frames to fd go to Python while its sender has a backlog */
    int fd, on;
    if (!PyArg_ParseTuple(args, "ip", &fd, &on))
        return NULL;
    if (ensure_fd(self, fd) < 0)
        return NULL;
    self->blocked[fd] = (unsigned char)on;
    Py_RETURN_NONE;
}

static PyObject *
fp_take(FastPath *self, PyObject *arg)
{
    /* the frame kept aside for ``fd``'s reader, or None */
    int fd;
    if (as_fd(arg, &fd) < 0)
        return NULL;
    if (fd < 0 || fd >= self->nfds || self->stash[fd] == NULL)
        Py_RETURN_NONE;
    PyObject *frame = self->stash[fd];
    self->stash[fd] = NULL;
    return frame;
}

static PyObject *
fp_pending(FastPath *self, PyObject *arg)
{
    int fd;
    if (as_fd(arg, &fd) < 0)
        return NULL;
    return PyBool_FromLong(fd >= 0 && fd < self->nfds && self->stash[fd] != NULL);
}

static PyObject *
fp_add(FastPath *self, PyObject *args)
{
    /* add(in_fd, frame, out_fd, in_port, out_port): frame[0:12] is the key */
    int in_fd, out_fd, in_port, out_port;
    Py_buffer frame;
    if (!PyArg_ParseTuple(args, "iy*iii", &in_fd, &frame, &out_fd, &in_port, &out_port))
        return NULL;
    if (frame.len < KEYLEN || in_fd < 0 || out_fd < 0) {
        PyBuffer_Release(&frame);
        PyErr_SetString(PyExc_ValueError, "a flow needs two descriptors and 12 bytes of MACs");
        return NULL;
    }
    if (count_port(self, in_port < out_port ? in_port : out_port) < 0
            || count_port(self, in_port > out_port ? in_port : out_port) < 0
            || ensure_fd(self, in_fd > out_fd ? in_fd : out_fd) < 0) {
        PyBuffer_Release(&frame);
        return NULL;
    }
    if (self->nflows * 4 >= self->nslots * 3) {
        if (self->nslots < MAX_SLOTS) {
            if (flows_grow(self) < 0) {
                PyBuffer_Release(&frame);
                return NULL;
            }
        } else {
            flows_clear(self);          /* as big as it gets: a cache, start over */
        }
    }
    const unsigned char *key = frame.buf;
    unsigned mask = self->nslots - 1;
    unsigned i = flow_hash(self->seed, in_fd, key) & mask;
    Flow *f = NULL;
    for (int probes = 0; probes < MAX_PROBES; probes++, i = (i + 1) & mask) {
        Flow *slot = &self->flows[i];
        if (slot->in_fd == -1) {
            self->nflows++;
            self->inflows[in_fd]++;
            f = slot;
            break;
        }
        if (slot->in_fd == in_fd && memcmp(slot->key, key, KEYLEN) == 0) {
            f = slot;
            break;
        }
    }
    if (f == NULL) {                    /* too far from its slot: not cached */
        PyBuffer_Release(&frame);
        Py_RETURN_FALSE;
    }
    f->in_fd = in_fd;
    memcpy(f->key, key, KEYLEN);
    f->out_fd = out_fd;
    f->in_port = in_port;
    f->out_port = out_port;
    f->hit = 0;
    f->last = 0.0;
    PyBuffer_Release(&frame);
    Py_RETURN_TRUE;
}

static PyObject *
fp_clear(FastPath *self, PyObject *Py_UNUSED(ignored))
{
    if (self->nflows)
        flows_clear(self);
    Py_RETURN_NONE;
}

static PyObject *
fp_harvest(FastPath *self, PyObject *Py_UNUSED(ignored))
{
    /* ([(port, in_pkts, in_bytes, out_pkts, out_bytes)...],
     *  [(in_port, source MAC, last hit)...]) since the last harvest */
    PyObject *counts = PyList_New(0), *seen = PyList_New(0);
    if (counts == NULL || seen == NULL)
        goto fail;
    for (int i = 0; i < self->ndirty; i++) {
        int port = self->dirty[i];
        PortCount *c = &self->counts[port];
        PyObject *t = Py_BuildValue("(iKKKK)", port, c->in_pkts, c->in_bytes,
                                    c->out_pkts, c->out_bytes);
        if (t == NULL || PyList_Append(counts, t) < 0) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
        memset(c, 0, sizeof *c);
    }
    self->ndirty = 0;
    for (unsigned i = 0; i < self->nslots; i++) {
        Flow *f = &self->flows[i];
        if (f->in_fd == -1 || !f->hit)
            continue;
        PyObject *t = Py_BuildValue("(iy#d)", f->in_port, f->key + 6, (Py_ssize_t)6, f->last);
        if (t == NULL || PyList_Append(seen, t) < 0) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
        f->hit = 0;
    }
    return Py_BuildValue("(NN)", counts, seen);
fail:
    Py_XDECREF(counts);
    Py_XDECREF(seen);
    return NULL;
}

static PyObject *
fp_poll(FastPath *self, PyObject *args)
{
    /* poll(timeout=-1, maxevents=-1): select.epoll.poll's answer, less
     * the input forwarded here; waits again while everything was */
    double timeout = -1.0;
    int maxevents = -1;
    if (!PyArg_ParseTuple(args, "|di", &timeout, &maxevents))
        return NULL;
    if (maxevents <= 0)
        maxevents = 256;
    if (maxevents > self->maxevents) {
        struct epoll_event *ev = PyMem_Realloc(self->events, maxevents * sizeof *ev);
        if (ev == NULL)
            return PyErr_NoMemory();
        self->events = ev;
        self->maxevents = maxevents;
    }
    double deadline = timeout >= 0 ? monotonic() + timeout : 0.0;
    for (;;) {
        int ms = -1, n;
        if (timeout >= 0) {
            double left = deadline - monotonic();
            ms = left <= 0 ? 0 : (int)ceil(left * 1000.0);
        }
        Py_BEGIN_ALLOW_THREADS
        n = epoll_wait(self->epfd, self->events, maxevents, ms);
        Py_END_ALLOW_THREADS
        if (n < 0) {
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0)
                    return NULL;
                return PyList_New(0);
            }
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        PyObject *out = NULL;
        double now = n ? monotonic() : 0.0;
        for (int i = 0; i < n; i++) {
            int fd = self->events[i].data.fd;
            uint32_t ev = self->events[i].events;
            /* read here only where a flow may match: the frames of other
             * sockets go straight to the Python reader, in batches */
            if (fd >= 0 && fd < self->nfds && self->ingress[fd] && self->inflows[fd]
                    && self->stash[fd] == NULL && (ev & EPOLLIN)
                    && !(ev & (EPOLLERR | EPOLLHUP))) {
                int done = forward(self, fd, now);
                if (done < 0) {
                    Py_XDECREF(out);
                    return NULL;
                }
                if (done) {
                    ev &= ~(uint32_t)EPOLLIN;
                    if (!ev)
                        continue;
                }
            }
            if (out == NULL && (out = PyList_New(0)) == NULL)
                return NULL;
            PyObject *t = Py_BuildValue("(iI)", fd, ev);
            if (t == NULL || PyList_Append(out, t) < 0) {
                Py_XDECREF(t);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(t);
        }
        if (out != NULL)
            return out;
        if (timeout == 0 || (timeout > 0 && monotonic() >= deadline))
            return PyList_New(0);
    }
}

static PyObject *
fp_stats(FastPath *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("{sKsKsKsI}", "hits", self->hits, "punts", self->punts,
                         "clears", self->clears, "flows", self->nflows);
}

static PyMethodDef fp_methods[] = {
    {"poll", (PyCFunction)fp_poll, METH_VARARGS,
     "poll(timeout=-1, maxevents=-1): the epoll events left for Python"},
    {"attach", (PyCFunction)fp_attach, METH_O, "attach(fd): read this ingress socket here"},
    {"attach_off", (PyCFunction)fp_attach_off, METH_O,
     "attach_off(fd): stop reading fd here (a frame kept aside stays until taken)"},
    {"detach", (PyCFunction)fp_detach, METH_O,
     "detach(fd): stop reading it and forget every flow (call before closing it)"},
    {"block", (PyCFunction)fp_block, METH_VARARGS,
     "block(fd, on): while on, frames to fd are left to Python (its sender's backlog)"},
    {"take", (PyCFunction)fp_take, METH_O, "take(fd): the frame kept aside for fd, or None"},
    {"pending", (PyCFunction)fp_pending, METH_O, "pending(fd): is a frame kept aside for fd?"},
    {"add", (PyCFunction)fp_add, METH_VARARGS,
     "add(in_fd, frame, out_fd, in_port, out_port) -> bool: forward frames with frame's "
     "MACs (False: not cached, its slot's neighbourhood is full)"},
    {"clear", (PyCFunction)fp_clear, METH_NOARGS, "clear(): forget every flow"},
    {"harvest", (PyCFunction)fp_harvest, METH_NOARGS,
     "harvest(): (port counts, MACs seen) since the last harvest"},
    {"stats", (PyCFunction)fp_stats, METH_NOARGS, "stats(): hits, punts, clears, flows"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vde_ipn.io.switch._fastpath.FastPath",
    .tp_basicsize = sizeof(FastPath),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A switch's flow cache and the epoll wait that serves it.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)fp_init,
    .tp_dealloc = (destructor)fp_dealloc,
    .tp_methods = fp_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath",
    "Known unicast forwarded in C; everything else left to the Python engine.", -1, NULL,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (PyType_Ready(&FastPathType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FastPathType);
    if (PyModule_AddObject(m, "FastPath", (PyObject *)&FastPathType) < 0) {
        Py_DECREF(&FastPathType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
