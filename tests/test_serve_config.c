/* lgpu-serve settings: defaults < config file < environment < flags, and
 * errors that name the offending key / flag / variable. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "lgpu/llama.h"

/* A fake environment: NULL-terminated name/value pairs. */
static const char **fake_env;
static const char *env_lookup(const char *name) {
    for (int i = 0; fake_env && fake_env[i]; i += 2)
        if (!strcmp(fake_env[i], name)) return fake_env[i + 1];
    return NULL;
}

static char cfg_path[256];

static void write_cfg(const char *json) {
    snprintf(cfg_path, sizeof cfg_path, "/tmp/lgpu-serve-cfg-%d.json", (int)getpid());
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
}

static int load(srv_config *c, int argc, const char **argv) { return srv_config_load(c, argc, (char **)argv, env_lookup); }

static void test_defaults(void **state) {
    (void)state;
    fake_env = NULL;
    const char *argv[] = {"lgpu-serve", "-m", "/models/stories260K.gguf"};
    srv_config c;
    TU_OK(load(&c, 3, argv));
    assert_string_equal(c.model, "/models/stories260K.gguf");
    assert_string_equal(c.model_name, "stories260K"); /* file stem */
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.parallel, 4);
    assert_int_equal(c.queue, 64);
    assert_int_equal(c.timeout, 600);
    assert_int_equal(c.max_body, 1 << 20);
    assert_int_equal(c.n_batch, 512);
    assert_null(c.device);
    srv_config_free(&c);
}

/* No model anywhere: the one built into liblgpu, served as "stories260K";
 * naming it gives the same id. */
static void test_embedded_default(void **state) {
    (void)state;
    fake_env = NULL;
    srv_config c;
    TU_OK(load(&c, 1, (const char *[]){"lgpu-serve"}));
    assert_string_equal(c.model, LGPU_MODEL_EMBEDDED);
    assert_true(c.model_default);
    assert_string_equal(c.model_name, "stories260K");
    srv_config_free(&c);
    TU_OK(load(&c, 3, (const char *[]){"lgpu-serve", "-m", "embedded:stories260K"}));
    assert_false(c.model_default);
    assert_string_equal(c.model_name, "stories260K");
    srv_config_free(&c);
}

static void test_precedence(void **state) {
    (void)state;
    /* port: file 9000, env 9001, flag 9002 -> flag; parallel: file 3, env 5 -> env;
     * queue: file only; ctx: default < file */
    write_cfg("{\"model\":\"a.gguf\",\"port\":9000,\"parallel\":3,\"queue\":7,\"ctx\":256,\"max-body\":4096}");
    const char *env[] = {"LGPU_PORT", "9001", "LGPU_PARALLEL", "5", "LGPU_MODEL_NAME", "envname", NULL};
    fake_env = env;
    const char *argv[] = {"lgpu-serve", "--config", cfg_path, "--port", "9002", "--model-name", "flagname"};
    srv_config c;
    TU_OK(load(&c, 7, argv));
    assert_string_equal(c.model, "a.gguf");
    assert_int_equal(c.port, 9002);
    assert_int_equal(c.parallel, 5);
    assert_int_equal(c.queue, 7);
    assert_int_equal(c.ctx, 256);
    assert_int_equal(c.max_body, 4096);
    assert_string_equal(c.model_name, "flagname");
    assert_string_equal(c.config, cfg_path);
    srv_config_free(&c);

    /* LGPU_CONFIG names the file when no flag does; flags still win */
    const char *env2[] = {"LGPU_CONFIG", cfg_path, NULL};
    fake_env = env2;
    const char *argv2[] = {"lgpu-serve", "--queue", "1"};
    TU_OK(load(&c, 3, argv2));
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.queue, 1);
    srv_config_free(&c);
    unlink(cfg_path);
    fake_env = NULL;
}

/* Each bad input fails with EINVAL and a detail containing `needle`. */
static void expect_error(int argc, const char **argv, const char *needle) {
    srv_config c;
    int st = load(&c, argc, argv);
    assert_int_equal(st, LGPU_EINVAL);
    if (!strstr(lgpu_last_error(), needle)) {
        print_error("error '%s' does not mention '%s'\n", lgpu_last_error(), needle);
        fail();
    }
}

static void test_errors(void **state) {
    (void)state;
    fake_env = NULL;
    expect_error(4, (const char *[]){"lgpu-serve", "-m", "x", "--bogus"}, "--bogus");
    expect_error(4, (const char *[]){"lgpu-serve", "-m", "x", "--port"}, "needs a value");
    expect_error(5, (const char *[]){"lgpu-serve", "-m", "x", "--port", "80x"}, "--port");
    expect_error(5, (const char *[]){"lgpu-serve", "-m", "x", "--port", "70000"}, "out of range");
    expect_error(5, (const char *[]){"lgpu-serve", "-m", "x", "--parallel", "0"}, "--parallel");
    expect_error(5, (const char *[]){"lgpu-serve", "-m", "x", "--kv-type", "q8"}, "'q8'");
    const char *env[] = {"LGPU_QUEUE", "many", NULL};
    fake_env = env;
    expect_error(3, (const char *[]){"lgpu-serve", "-m", "x"}, "LGPU_QUEUE");
    fake_env = NULL;
    write_cfg("{\"model\":\"a\",\"colour\":1}");
    expect_error(3, (const char *[]){"lgpu-serve", "--config", cfg_path}, "\"colour\"");
    write_cfg("{\"model\":\"a\",\"port\":\"80\"}");
    expect_error(3, (const char *[]){"lgpu-serve", "--config", cfg_path}, "integer");
    write_cfg("{\"model\":\"a\",");
    expect_error(3, (const char *[]){"lgpu-serve", "--config", cfg_path}, cfg_path);
    write_cfg("[1,2]");
    expect_error(3, (const char *[]){"lgpu-serve", "--config", cfg_path}, "object");
    unlink(cfg_path);
    expect_error(3, (const char *[]){"lgpu-serve", "--config", "/nonexistent/lgpu.json"}, "/nonexistent/lgpu.json");
}

/* --lora NAME=FILE[:SCALE]: repeatable flags replace the lower sources'
 * list; the file takes a string, an array or an object; LGPU_LORA is
 * comma-separated; names must be unique and differ from the base's id. */
static void test_lora(void **state) {
    (void)state;
    srv_config c;
    fake_env = NULL;
    TU_OK(load(&c, 7, (const char *[]){"lgpu-serve", "-m", "base.gguf", "--lora", "a=/x/a:0.5", "--lora", "b=/y/b.gguf"}));
    assert_int_equal(c.n_lora, 2);
    assert_string_equal(c.lora_name[0], "a");
    assert_string_equal(c.lora_spec[0], "/x/a:0.5");
    assert_string_equal(c.lora_name[1], "b");
    assert_string_equal(c.lora_spec[1], "/y/b.gguf");
    srv_config_free(&c);

    write_cfg("{\"model\":\"m.gguf\",\"lora\":{\"fr\":\"/a/fr\",\"de\":\"/a/de:2\"}}");
    TU_OK(load(&c, 3, (const char *[]){"lgpu-serve", "--config", cfg_path}));
    assert_int_equal(c.n_lora, 2);
    assert_string_equal(c.lora_name[1], "de");
    assert_string_equal(c.lora_spec[1], "/a/de:2");
    srv_config_free(&c);
    /* a flag replaces the file's list */
    TU_OK(load(&c, 5, (const char *[]){"lgpu-serve", "--config", cfg_path, "--lora", "x=/x"}));
    assert_int_equal(c.n_lora, 1);
    assert_string_equal(c.lora_name[0], "x");
    srv_config_free(&c);
    write_cfg("{\"model\":\"m.gguf\",\"lora\":[\"p=/p\",\"q=/q\"]}");
    TU_OK(load(&c, 3, (const char *[]){"lgpu-serve", "--config", cfg_path}));
    assert_int_equal(c.n_lora, 2);
    srv_config_free(&c);
    const char *env[] = {"LGPU_LORA", "e1=/e/1,e2=/e/2:0.3", NULL};
    fake_env = env;
    TU_OK(load(&c, 3, (const char *[]){"lgpu-serve", "-m", "m.gguf"}));
    assert_int_equal(c.n_lora, 2);
    assert_string_equal(c.lora_spec[1], "/e/2:0.3");
    srv_config_free(&c);
    fake_env = NULL;

    expect_error(5, (const char *[]){"lgpu-serve", "-m", "x", "--lora", "/no/name"}, "NAME=FILE");
    expect_error(5, (const char *[]){"lgpu-serve", "-m", "x", "--lora", "=/f"}, "NAME");
    expect_error(7, (const char *[]){"lgpu-serve", "-m", "x", "--lora", "a=/f", "--lora", "a=/g"}, "twice");
    expect_error(5, (const char *[]){"lgpu-serve", "-m", "base.gguf", "--lora", "base=/f"}, "base model's id");
    write_cfg("{\"model\":\"m.gguf\",\"lora\":[1]}");
    expect_error(3, (const char *[]){"lgpu-serve", "--config", cfg_path}, "\"lora\"");
    unlink(cfg_path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lora),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_embedded_default),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
