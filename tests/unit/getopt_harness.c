/*
 * Reference harness for tests/unit/test_getopt.py: runs the C library's
 * getopt_long / getopt_long_only over an argv and reports what it returns.
 *
 * usage: getopt_harness MODE OPTSTRING NLONG [NAME HAS_ARG VAL]... ARGV0 [ARG]...
 *   MODE     "long" (getopt_long) or "only" (getopt_long_only)
 *   VAL      decimal int returned for that long option (flag is always NULL)
 *
 * stdout, one record per line, fields separated by TAB:
 *   R <return value> <optarg or "-" when NULL> <optarg text>
 *   I <optind>
 *   A <argv[i]>          for every argv element after parsing (permuted order)
 * stderr: whatever getopt printed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 5) {
        fputs("bad harness usage\n", stdout);
        return 2;
    }
    int only = strcmp(argv[1], "only") == 0;
    const char *optstring = argv[2];
    int nlong = atoi(argv[3]);
    struct option *longopts = calloc((size_t)nlong + 1, sizeof *longopts);
    int i = 4;
    for (int k = 0; k < nlong; k++, i += 3) {
        longopts[k].name = argv[i];
        longopts[k].has_arg = atoi(argv[i + 1]);
        longopts[k].flag = NULL;
        longopts[k].val = atoi(argv[i + 2]);
    }
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    setvbuf(stdout, NULL, _IONBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    for (;;) {
        int c = only ? getopt_long_only(sub_argc, sub_argv, optstring, longopts, NULL)
                     : getopt_long(sub_argc, sub_argv, optstring, longopts, NULL);
        if (c == -1)
            break;
        if (optarg)
            printf("R\t%d\t+\t%s\n", c, optarg);
        else
            printf("R\t%d\t-\t\n", c);
    }
    printf("I\t%d\n", optind);
    for (int k = 0; k < sub_argc; k++)
        printf("A\t%s\n", sub_argv[k]);
    return 0;
}
