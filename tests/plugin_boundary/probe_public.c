/* A pack that uses the whole contract, include/ only: it must compile
 * (tests/plugin_boundary/check), so the probe above fails for the reason
 * it names and not for a broken set-up. */
#include "jarvis/node.h"
#include "jarvis/util.h"

int probe_public(void);
int probe_public(void)
{
    return jarvis_hex_value('a') + (int)JARVIS_NODE_API_VERSION;
}
