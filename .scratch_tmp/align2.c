#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "examples/llama.h"
#include <time.h>
#define NREP 9
static double now_s(void){struct timespec ts;clock_gettime(CLOCK_MONOTONIC,&ts);return ts.tv_sec+ts.tv_nsec*1e-9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return (x>y)-(x<y);}
/* the same matrix product with b at byte offsets 0, 16, 32, 48, 64 from a 64-byte boundary */
int main(int argc,char**argv){
  int D=2048,M=argc>1?atoi(argv[1]):2048,T=128,i,off;
  tfu_context*ctx=tfu_init_malloc((size_t)1<<30,0);
  tfu_tensor*big=tfu_new_tensor_1d(ctx,TFU_F32,(int64_t)D*T+64),*wo=tfu_new_tensor_2d(ctx,TFU_F32,D,M);
  uint32_t s=1; llama_fill(big,&s,0,1); llama_fill(wo,&s,0,0.02f);
  for(off=0;off<=64;off+=16){
    tfu_tensor*b=tfu_view_2d(ctx,big,D,T,(size_t)D*4,(size_t)off);
    tfu_graph*g=tfu_graph_build(ctx,tfu_mul_mat(ctx,wo,b)); tfu_plan*q=tfu_plan_compile(g,NULL); double sm[NREP];
    tfu_plan_run(q); tfu_plan_run(q);
    for(i=0;i<NREP;i++){double t0=now_s();tfu_plan_run(q);sm[i]=(now_s()-t0)*1e3;} qsort(sm,NREP,sizeof(double),cmpd);
    printf("b at %%64 = %2d: %.3f ms\n",(int)((uintptr_t)b->data%64),sm[NREP/2]); tfu_plan_free(q);}
  return 0;}
