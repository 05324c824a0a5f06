/* A real TensorFlow Lite external delegate for tests, built with gcc at test time.
 *
 * It speaks the external-delegate plugin ABI the interpreters' load_delegate() uses
 * (tflite_plugin_create_delegate / tflite_plugin_destroy_delegate) and claims no node, so the CPU
 * kernels run the whole graph. It proves what a delegate sees: each option given to it
 * (KEY=VALUE) and that the interpreter prepared it, appended as lines to the file named by its
 * "record" option. The option "fail=1" makes creation fail, as a missing Edge TPU does.
 * The struct mirrors TfLiteDelegate's leading fields (tensorflow/lite/core/c/common.h); the rest stays zero.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TfLiteDelegate {
  void* data_;
  int (*Prepare)(void* context, struct TfLiteDelegate* delegate);
  void* CopyFromBufferHandle;
  void* CopyToBufferHandle;
  void* FreeBufferHandle;
  int64_t flags;
  void* opaque_delegate_builder;
  void* reserved[8];
} TfLiteDelegate;

static void note(TfLiteDelegate* d, const char* line) {
  if (!d->data_) return;
  FILE* f = fopen((const char*)d->data_, "a");
  if (f) { fprintf(f, "%s\n", line); fclose(f); }
}

static int prepare(void* context, TfLiteDelegate* delegate) {
  (void)context;
  note(delegate, "prepared");
  return 0; /* kTfLiteOk: no node replaced */
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report_error)(const char*)) {
  TfLiteDelegate* d = calloc(1, sizeof(TfLiteDelegate));
  for (size_t i = 0; i < n; i++) {
    if (strcmp(keys[i], "fail") == 0 && strcmp(values[i], "1") == 0) {
      if (report_error) report_error("record delegate: asked to fail");
      free(d->data_); free(d);
      return NULL;
    }
    if (strcmp(keys[i], "record") == 0) d->data_ = strdup(values[i]);
  }
  d->Prepare = prepare;
  char line[512];
  for (size_t i = 0; i < n; i++) {
    snprintf(line, sizeof line, "option %s=%s", keys[i], values[i]);
    note(d, line);
  }
  return d;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* d) {
  if (d) { free(d->data_); free(d); }
}
