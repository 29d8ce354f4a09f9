#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "examples/llama.h"
#include <time.h>
#define NREP 9
static double now_s(void){struct timespec ts;clock_gettime(CLOCK_MONOTONIC,&ts);return ts.tv_sec+ts.tv_nsec*1e-9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return (x>y)-(x<y);}
int main(int argc,char**argv){
  int D=2048,M=argc>1?atoi(argv[1]):2048,T=128,f,i;
  tfu_context*ctx=tfu_init_malloc((size_t)1<<30,0);
  tfu_tensor*h=tfu_new_tensor_2d(ctx,TFU_F32,D,T),*wn=tfu_new_tensor_1d(ctx,TFU_F32,D),*wo=tfu_new_tensor_2d(ctx,TFU_F32,D,M);
  uint32_t s=1; llama_fill(h,&s,0,1); llama_fill(wn,&s,1,0.1f); llama_fill(wo,&s,0,0.02f);
  tfu_tensor*n=tfu_rms_norm(ctx,h,1e-5f),*x=tfu_mul(ctx,n,wn),*y=tfu_mul_mat(ctx,wo,x);
  tfu_graph*g=tfu_graph_build(ctx,y);
  tfu_plan*p[2]; double sm[2][NREP];
  for(f=0;f<2;f++){tfu_plan_options o=tfu_plan_default_options();o.no_fusion=!f;p[f]=tfu_plan_compile(g,&o);tfu_plan_run(p[f]);
    printf("%s: x offset %lld (data %% 64 = %d), y offset %lld (data %% 64 = %d), arena %zu\n", f?"fused":"unfused",
      (long long)tfu_plan_value_offset(p[f],x),(int)((uintptr_t)x->data%64),(long long)tfu_plan_value_offset(p[f],y),(int)((uintptr_t)y->data%64),tfu_plan_arena_bytes(p[f]));}
  for(i=0;i<NREP;i++)for(f=0;f<2;f++){double t0=now_s();tfu_plan_run(p[f]);sm[f][i]=(now_s()-t0)*1e3;}
  for(f=0;f<2;f++){qsort(sm[f],NREP,sizeof(double),cmpd);printf("%s %.3f ms\n",f?"fused":"unfused",sm[f][NREP/2]);}
  /* the matmul alone on a leaf b */
  { tfu_tensor*b=tfu_new_tensor_2d(ctx,TFU_F32,D,T); tfu_graph*g2; tfu_plan*q; llama_fill(b,&s,0,1);
    g2=tfu_graph_build(ctx,tfu_mul_mat(ctx,wo,b)); q=tfu_plan_compile(g2,NULL); tfu_plan_run(q);
    for(i=0;i<NREP;i++){double t0=now_s();tfu_plan_run(q);sm[0][i]=(now_s()-t0)*1e3;} qsort(sm[0],NREP,sizeof(double),cmpd); printf("mm alone (leaf b, data %% 64 = %d): %.3f ms\n",(int)((uintptr_t)b->data%64),sm[0][NREP/2]); }
  { tfu_graph*g3=tfu_graph_build(ctx,x); tfu_plan*q=tfu_plan_compile(g3,NULL); tfu_plan_run(q);
    for(i=0;i<NREP;i++){double t0=now_s();tfu_plan_run(q);sm[0][i]=(now_s()-t0)*1e3;} qsort(sm[0],NREP,sizeof(double),cmpd); printf("rms*w alone fused: %.3f ms\n",sm[0][NREP/2]); }
  return 0;}
