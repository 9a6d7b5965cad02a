/*
 * it_clock.c - placeholder.
 */
#include "config.h"

int
main(void)
{
    return 77;
}
