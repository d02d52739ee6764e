/* containment.h - an instance's containment as a fact (containment.c). */
#ifndef IRFW_CONTAINMENT_H
#define IRFW_CONTAINMENT_H

#include "irfw/irfw.h"

/* "CONTAINED", "PARTIALLY CONTAINED", ... for headlines. */
const char *irfw_containment_outcome(irfw_containment c);
/* The reports earlier runs of the case kept in its record. */
void irfw_containment_load(irfw_target *t);

#endif /* IRFW_CONTAINMENT_H */
