/* plugins_doc.h - `irfw plugins`: listing and documentation (plugins_doc.c). */
#ifndef IRFW_PLUGINS_DOC_H
#define IRFW_PLUGINS_DOC_H

#include <stdbool.h>

struct irfw_run;

/* MAN: the section of irfw.ini(5) (scripts/gen-man.sh); MAN_PAGE: a
 * complete page, irfw-NAME(7); JSON: one document (irfw-plugin/1). */
enum { IRFW_DESCRIBE_TEXT, IRFW_DESCRIBE_MAN, IRFW_DESCRIBE_INI, IRFW_DESCRIBE_MAN_PAGE, IRFW_DESCRIBE_JSON };
/* The plugins of the search path, and any module that would be refused;
 * as one JSON document (irfw-plugins/1) with `json`. */
int irfw_plugins_list(struct irfw_run *r, bool json);
/* One plugin's (or, for "irfw", the [irfw] section's) documentation. */
int irfw_plugins_describe(struct irfw_run *r, const char *name, int format);

#endif /* IRFW_PLUGINS_DOC_H */
