/* A pack that reaches for a header of the core: it must not compile
 * (tests/plugin_boundary/check). */
#include "jarvis/node.h"
#include "runtable.h"

int probe_private(void);
int probe_private(void)
{
    return RT_MAX_SLOTS > 0;
}
