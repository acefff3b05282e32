/* No HYPERPROCESS and no handlers. */
#include <hyperc/hyperprocess.h>

static int helper(int x) { return x; }
int use_helper(void) { return helper(1); }
