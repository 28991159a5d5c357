/* hostile_gone -- a library hostile_needs_gone links; it is built where the
 * loader never looks, so that plugin's DT_NEEDED entry cannot be found. */
int hostile_gone_function(void);
int hostile_gone_function(void) { return 1; }
