#ifndef KERNEL_APP_H
#define KERNEL_APP_H
/* The application's entry point, called once on every shard after all shards are up. */
void app_main(int argc, char **argv);
#endif
