/*
 * schema.c - compile the RIV-TA XSDs once (loader confined to the schema dir) and validate
 * request elements with pooled xmlSchemaValidCtxt, one per concurrent caller.
 * Owns: compiled schemas and the context free list. Threads: schema_validate from any thread.
 */
#include "schema.h"

#include <linux/limits.h> /* PATH_MAX; <limits.h> is shadowed by gateway/limits.h */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parserInternals.h>
#include <libxml/xmlschemas.h>

#include "xmlsafe.h"

struct ctxt_node {
        xmlSchemaValidCtxtPtr ctxt;
        struct ctxt_node *next;
};

struct ctxt_pool {
        pthread_mutex_t lock;
        struct ctxt_node *free_list;
};

struct schema_set {
        xmlSchemaPtr schema[SCHEMA_KINDS];
        struct ctxt_pool pool[SCHEMA_KINDS];
};

/* Compiling the XSDs is the only time libxml2 may read a file: the loader below allows files
 * under one directory, set under this lock, and is swapped back to the refusing one after. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static char allowed_dir[PATH_MAX];

static xmlParserInputPtr dir_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
        (void)id;
        if (!url)
                return NULL;
        const char *path = url;
        if (strncmp(url, "file://", 7) == 0)
                path = url + 7;
        else if (strstr(url, "://"))
                return NULL; /* network */
        char real[PATH_MAX];
        if (!realpath(path, real))
                return NULL;
        size_t n = strlen(allowed_dir);
        if (n == 0 || strncmp(real, allowed_dir, n) != 0 || real[n] != '/')
                return NULL;
        return xmlNewInputFromFile(ctxt, real);
}

struct err_sink {
        char *buf;
        size_t len;
        bool set;
};

static void trim_nl(char *s)
{
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
                s[--n] = '\0';
}

static void compile_error(void *data, xmlErrorPtr e)
{
        struct err_sink *sink = data;
        if (sink->set || !e || e->level < XML_ERR_ERROR)
                return;
        sink->set = true;
        snprintf(sink->buf, sink->len, "%s:%d: %s", e->file ? e->file : "?", e->line,
                 e->message ? e->message : "schema error");
        trim_nl(sink->buf);
}

static xmlSchemaPtr compile_one(const char *file, char *err, size_t errlen)
{
        struct err_sink sink = {err, errlen, false};
        xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(file);
        if (!pc) {
                snprintf(err, errlen, "%s: cannot create schema parser", file);
                return NULL;
        }
        xmlSchemaSetParserStructuredErrors(pc, compile_error, &sink);
        xmlSchemaPtr s = xmlSchemaParse(pc);
        xmlSchemaFreeParserCtxt(pc);
        if (!s && !sink.set)
                snprintf(err, errlen, "%s: cannot compile schema", file);
        return s;
}

struct schema_set *schema_set_load(const char *dir, char *err, size_t errlen)
{
        xmlsafe_init();
        char real[PATH_MAX];
        if (!dir || !realpath(dir, real)) {
                snprintf(err, errlen, "schema dir %s: not found", dir ? dir : "(null)");
                return NULL;
        }
        struct schema_set *s = calloc(1, sizeof *s);
        if (!s) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        for (int k = 0; k < SCHEMA_KINDS; k++)
                pthread_mutex_init(&s->pool[k].lock, NULL);
        static const char *const files[SCHEMA_KINDS] = {SCHEMA_REGISTER_XSD, SCHEMA_REVOKE_XSD};

        pthread_mutex_lock(&load_lock);
        snprintf(allowed_dir, sizeof allowed_dir, "%s", real);
        xmlExternalEntityLoader prev = xmlGetExternalEntityLoader();
        xmlSetExternalEntityLoader(dir_loader);
        bool ok = true;
        for (int k = 0; k < SCHEMA_KINDS && ok; k++) {
                char path[PATH_MAX + 128];
                snprintf(path, sizeof path, "%s/%s", real, files[k]);
                s->schema[k] = compile_one(path, err, errlen);
                ok = s->schema[k] != NULL;
        }
        xmlSetExternalEntityLoader(prev);
        allowed_dir[0] = '\0';
        pthread_mutex_unlock(&load_lock);
        if (!ok) {
                schema_set_free(s);
                return NULL;
        }
        return s;
}

void schema_set_free(struct schema_set *s)
{
        if (!s)
                return;
        for (int k = 0; k < SCHEMA_KINDS; k++) {
                struct ctxt_node *n = s->pool[k].free_list;
                while (n) {
                        struct ctxt_node *next = n->next;
                        xmlSchemaFreeValidCtxt(n->ctxt);
                        free(n);
                        n = next;
                }
                pthread_mutex_destroy(&s->pool[k].lock);
                if (s->schema[k])
                        xmlSchemaFree(s->schema[k]);
        }
        free(s);
}

static struct ctxt_node *pool_take(struct ctxt_pool *p, xmlSchemaPtr schema)
{
        pthread_mutex_lock(&p->lock);
        struct ctxt_node *n = p->free_list;
        if (n)
                p->free_list = n->next;
        pthread_mutex_unlock(&p->lock);
        if (n)
                return n;
        n = calloc(1, sizeof *n);
        if (!n)
                return NULL;
        n->ctxt = xmlSchemaNewValidCtxt(schema);
        if (!n->ctxt) {
                free(n);
                return NULL;
        }
        return n;
}

static void pool_put(struct ctxt_pool *p, struct ctxt_node *n)
{
        pthread_mutex_lock(&p->lock);
        n->next = p->free_list;
        p->free_list = n;
        pthread_mutex_unlock(&p->lock);
}

struct vstate {
        struct verrs *errs;
        const xmlNode *top;
        int count;
};

/* "Element '{urn:x}intyg': ..." -> "Element 'intyg': ...": namespaces make messages unreadable. */
static void strip_ns(const char *in, char *out, size_t outlen)
{
        size_t o = 0;
        for (const char *p = in; *p && o + 1 < outlen; p++) {
                if (*p == '{') {
                        const char *close = strchr(p, '}');
                        if (close) {
                                p = close;
                                continue;
                        }
                }
                out[o++] = *p;
        }
        out[o] = '\0';
        trim_nl(out);
}

static void valid_error(void *data, xmlErrorPtr e)
{
        struct vstate *st = data;
        if (!e || e->level < XML_ERR_ERROR)
                return;
        st->count++;
        char path[160] = "";
        if (e->node && ((xmlNode *)e->node)->type == XML_ELEMENT_NODE)
                xmlsafe_path(e->node, st->top, path, sizeof path);
        char msg[220];
        strip_ns(e->message ? e->message : "schema validation error", msg, sizeof msg);
        verrs_add(st->errs, "xsd", path, "line %d: %s", e->line, msg);
}

int schema_validate(const struct schema_set *s, enum schema_kind kind, xmlNode *elem,
                    const xmlNode *top, struct verrs *errs)
{
        if (!s || kind < 0 || kind >= SCHEMA_KINDS || !elem) {
                verrs_add(errs, "xsd", "", "internal: no schema for this request");
                return -1;
        }
        struct ctxt_pool *pool = (struct ctxt_pool *)&s->pool[kind];
        struct ctxt_node *n = pool_take(pool, s->schema[kind]);
        if (!n) {
                verrs_add(errs, "xsd", "", "internal: out of memory for a validation context");
                return -1;
        }
        struct vstate st = {errs, top, 0};
        xmlSchemaSetValidStructuredErrors(n->ctxt, valid_error, &st);
        int rc = xmlSchemaValidateOneElement(n->ctxt, elem);
        xmlSchemaSetValidStructuredErrors(n->ctxt, NULL, NULL);
        pool_put(pool, n);
        if (rc < 0) {
                verrs_add(errs, "xsd", "", "internal: schema validation failed to run");
                return -1;
        }
        if (rc > 0 && st.count == 0) {
                verrs_add(errs, "xsd", "", "the request does not match the schema");
                st.count = 1;
        }
        return st.count;
}
