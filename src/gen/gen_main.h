/* The entry of `hyperc gen` (main.c), for the hyperc command. */
#ifndef HYPERC_GEN_MAIN_H
#define HYPERC_GEN_MAIN_H

/* Run `hyperc gen` with its command line (argv[0] is "gen"): the exit
 * status. */
int hcg_main(int argc, char **argv);

#endif
