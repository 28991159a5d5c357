/* A valid shared library that is not a taskmill plugin. */
int taskmill_not_a_plugin(int x);
int taskmill_not_a_plugin(int x) { return x + 1; }
