/* plugins_doc.h - `irfw plugins`: listing and documentation (plugins_doc.c). */
#ifndef IRFW_PLUGINS_DOC_H
#define IRFW_PLUGINS_DOC_H

struct irfw_run;

enum { IRFW_DESCRIBE_TEXT, IRFW_DESCRIBE_MAN, IRFW_DESCRIBE_INI };
/* The plugins of the search path, and any module that would be refused. */
int irfw_plugins_list(struct irfw_run *r);
/* One plugin's (or, for "irfw", the [irfw] section's) documentation. */
int irfw_plugins_describe(struct irfw_run *r, const char *name, int format);

#endif /* IRFW_PLUGINS_DOC_H */
